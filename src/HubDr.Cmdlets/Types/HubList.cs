using System.Collections.ObjectModel;

namespace HubDr.Cmdlets;

/// <summary>
/// The read-only list behind every multi-valued property of HubDr's output types (Labels, RecipientKeyIds, Reasons,
/// RowCounts, Steps, …). It behaves like an array in PowerShell (indexing, Count, -contains, -join, ConvertTo-Json
/// writes a JSON array), and its ToString() joins the items with "; ", so Export-Csv and list views show the values
/// instead of "System.String[]".
/// </summary>
public sealed class HubList<T> : ReadOnlyCollection<T>
{
    public HubList(IEnumerable<T>? items)
        : base((items ?? []).ToList())
    {
    }

    public static new HubList<T> Empty { get; } = new([]);

    public override string ToString() => string.Join("; ", this.Select(i => i?.ToString()));
}
