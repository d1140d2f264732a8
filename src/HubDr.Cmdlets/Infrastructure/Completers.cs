using System.Collections;
using System.Management.Automation;
using System.Management.Automation.Language;
using HubDr.Engine.Backup;
using HubDr.Engine.Stores;

namespace HubDr.Cmdlets.Infrastructure;

/// <summary>Tab completion of hub names from the store named by -Store on the same command line.</summary>
public sealed class HubNameCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete, CommandAst commandAst, IDictionary fakeBoundParameters) =>
        StoreListing.Complete(fakeBoundParameters, wordToComplete, b => b.Hub);
}

/// <summary>Tab completion of backup ids (newest first) from -Store and -Hub on the same command line.</summary>
public sealed class BackupIdCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete, CommandAst commandAst, IDictionary fakeBoundParameters) =>
        StoreListing.Complete(fakeBoundParameters, wordToComplete, b => b.BackupId,
            fakeBoundParameters.Contains("Hub") ? fakeBoundParameters["Hub"]?.ToString() : null);
}

internal static class StoreListing
{
    public static IEnumerable<CompletionResult> Complete(IDictionary bound, string word, Func<BackupListing, string> select, string? hub = null)
    {
        var store = bound.Contains("Store") ? bound["Store"]?.ToString() : Environment.GetEnvironmentVariable("HUBDR_STORE");
        if (string.IsNullOrEmpty(store))
        {
            return [];
        }

        try
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            var uri = StoreFactory.SchemeOf(store) == "" ? Path.GetFullPath(store) : store;
            var list = Task.Run(async () =>
            {
                await using var s = StoreFactory.Create(new StoreSpec { Uri = uri });
                return await CatalogService.ListAsync(s, hub, cts.Token).ConfigureAwait(false);
            }, cts.Token).GetAwaiter().GetResult();
            return list.Select(select).Distinct(StringComparer.Ordinal)
                .Where(v => v.StartsWith(word.Trim('\'', '"'), StringComparison.OrdinalIgnoreCase))
                .Select(v => new CompletionResult(v, v, CompletionResultType.ParameterValue, v))
                .ToList();
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return []; // Completion must never throw at the operator.
        }
    }
}
