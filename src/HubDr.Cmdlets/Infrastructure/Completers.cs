using System.Collections;
using System.Management.Automation;
using System.Management.Automation.Language;
using HubDr.Engine.Backup;
using HubDr.Engine.Stores;

namespace HubDr.Cmdlets.Infrastructure;

/// <summary>Tab completion of hub names from the store named by -Store, or by the settings file (-SettingsPath or $env:HUBDR_SETTINGS).</summary>
public sealed class HubNameCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete, CommandAst commandAst, IDictionary fakeBoundParameters) =>
        StoreListing.Complete(fakeBoundParameters, wordToComplete, b => b.Hub, useHub: false);
}

/// <summary>Tab completion of backup ids (newest first) from -Store and -Hub, or the settings file's Store and Hub.</summary>
public sealed class BackupIdCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete, CommandAst commandAst, IDictionary fakeBoundParameters) =>
        StoreListing.Complete(fakeBoundParameters, wordToComplete, b => b.BackupId, useHub: true);
}

internal static class StoreListing
{
    public static IEnumerable<CompletionResult> Complete(IDictionary bound, string word, Func<BackupListing, string> select, bool useHub)
    {
        string? Bound(string name) => bound.Contains(name) ? bound[name]?.ToString() : null;
        HubSettings settings;
        string? store;
        string? hub;
        try
        {
            // The same sources the cmdlet itself uses: parameters, then the settings file; relative paths against $PWD.
            var cwd = CurrentDirectory();
            var settingsPath = Bound("SettingsPath") ?? Environment.GetEnvironmentVariable("HUBDR_SETTINGS");
            settings = string.IsNullOrWhiteSpace(settingsPath) ? HubSettings.Empty : HubSettings.Load(Path.GetFullPath(settingsPath, cwd));
            store = Bound("Store") ?? settings.Store ?? Environment.GetEnvironmentVariable("HUBDR_STORE");
            if (!string.IsNullOrEmpty(store) && StoreFactory.SchemeOf(store) == "")
            {
                store = Path.GetFullPath(store, cwd);
            }

            hub = useHub ? Bound("Hub") ?? settings.Hub : null;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return []; // Completion must never throw at the operator.
        }

        if (string.IsNullOrEmpty(store))
        {
            return [];
        }

        try
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            var spec = HubStoreCmdletBase.StoreSpecFromSettings(settings, store, Bound("StoreEndpoint"), Bound("StoreRegion"), bound.Contains("UseManagedIdentity"));
            var list = Task.Run(async () =>
            {
                await using var s = StoreFactory.Create(spec);
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

    /// <summary>$PWD of the session completing (a completer runs on the pipeline thread of that session).</summary>
    private static string CurrentDirectory()
    {
        try
        {
            using var ps = PowerShell.Create(RunspaceMode.CurrentRunspace);
            if (ps.AddScript("$PWD.ProviderPath").Invoke().FirstOrDefault()?.BaseObject is string pwd && pwd.Length > 0)
            {
                return pwd;
            }
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // Fall through to the process's folder.
        }

        return Environment.CurrentDirectory;
    }
}
