using System.Collections;
using System.Text;

namespace HubDr.Engine.Sources;

/// <summary>
/// Collects module manifests and configuration (runbook steps 2 and 3) as small in-memory files, redacted.
/// These are small by nature (kilobytes to a few megabytes); the database dump is the only large stream.
/// </summary>
public sealed class SourceCollector
{
    /// <summary>Largest single manifest/config file accepted (they are held in memory).</summary>
    public const long MaxFileSize = 64L * 1024 * 1024;

    private readonly SourceSpec _spec;
    private readonly Redactor _redactor;
    private readonly IOperationLog _log;

    public SourceCollector(SourceSpec spec, Redactor redactor, IOperationLog log)
    {
        _spec = spec;
        _redactor = redactor;
        _log = log;
    }

    public async Task<List<CollectedFile>> CollectAsync(CancellationToken ct)
    {
        var files = new List<CollectedFile>();
        foreach (var p in _spec.ManifestPaths)
        {
            AddPath(files, p, "manifests", "manifest", redact: false);
        }

        if (!string.IsNullOrWhiteSpace(_spec.ManifestCommand))
        {
            var bytes = await RunExportAsync(_spec.ManifestCommand!, "manifests", ct).ConfigureAwait(false);
            files.Add(new CollectedFile("manifests/export.json", _redactor.RedactFile("export.json", bytes), "manifest"));
        }

        foreach (var p in _spec.ConfigPaths)
        {
            AddPath(files, p, "config", "config", redact: true);
        }

        if (!string.IsNullOrWhiteSpace(_spec.ConfigCommand))
        {
            var bytes = await RunExportAsync(_spec.ConfigCommand!, "config", ct).ConfigureAwait(false);
            files.Add(new CollectedFile("config/export.json", _redactor.RedactFile("export.json", bytes), "config"));
        }

        if (_spec.EnvironmentPrefixes.Count > 0)
        {
            var vars = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (DictionaryEntry e in Environment.GetEnvironmentVariables())
            {
                var name = (string)e.Key;
                if (_spec.EnvironmentPrefixes.Any(p => name.StartsWith(p, StringComparison.OrdinalIgnoreCase)))
                {
                    vars[name] = (string?)e.Value ?? "";
                }
            }

            var redacted = _redactor.RedactEnvironment(vars);
            files.Add(new CollectedFile("config/env.json", Backup.HubJson.Serialize(redacted), "config"));
            _log.Verbose($"Captured {vars.Count} environment variable(s) with prefix {string.Join(", ", _spec.EnvironmentPrefixes)}.");
        }

        // Manifests are redacted too: a module manifest can carry a token just as well.
        return files.Select(f => f.Kind == "manifest" && !f.ArchiveName.EndsWith("export.json", StringComparison.Ordinal)
            ? f with { Content = _redactor.RedactFile(f.ArchiveName, f.Content) }
            : f).ToList();
    }

    private void AddPath(List<CollectedFile> files, string path, string folder, string kind, bool redact)
    {
        var full = Path.GetFullPath(path);
        if (File.Exists(full))
        {
            AddFile(files, full, folder + "/" + Path.GetFileName(full), kind, redact);
        }
        else if (Directory.Exists(full))
        {
            var root = Path.GetFileName(full.TrimEnd(Path.DirectorySeparatorChar));
            foreach (var f in Directory.EnumerateFiles(full, "*", new EnumerationOptions { RecurseSubdirectories = true }).Order(StringComparer.Ordinal))
            {
                var rel = Path.GetRelativePath(full, f).Replace(Path.DirectorySeparatorChar, '/');
                AddFile(files, f, $"{folder}/{root}/{rel}", kind, redact);
            }
        }
        else
        {
            throw new HubDrException("SourcePathNotFound", HubErrorCategory.ObjectNotFound,
                $"The {kind} source '{path}' does not exist.") { Target = path };
        }
    }

    private void AddFile(List<CollectedFile> files, string path, string archiveName, string kind, bool redact)
    {
        var info = new FileInfo(path);
        if (info.Length > MaxFileSize)
        {
            throw new HubDrException("SourceFileTooLarge", HubErrorCategory.InvalidData,
                $"'{path}' is {info.Length} bytes; {kind} files larger than {MaxFileSize} bytes are not accepted (they are held in memory).") { Target = path };
        }

        var bytes = File.ReadAllBytes(path);
        files.Add(new CollectedFile(archiveName, redact ? _redactor.RedactFile(archiveName, bytes) : bytes, kind));
        _log.Verbose($"Collected {kind} '{path}' ({bytes.Length} bytes) as {archiveName}.");
    }

    /// <summary>
    /// Runs an export command. With "{path}" it writes into a private (owner-only) temp folder that is deleted right
    /// after (the export is read and redacted in memory); without it, standard output is the export.
    /// </summary>
    private async Task<byte[]> RunExportAsync(string command, string what, CancellationToken ct)
    {
        string? dir = null;
        try
        {
            var placeholders = new Dictionary<string, string>();
            string? outFile = null;
            if (command.Contains("{path}", StringComparison.Ordinal))
            {
                // Owner-only (Windows: ACL without inherited entries), cleared by a reboot, removed by a later run if this one is killed.
                dir = IO.PrivateFiles.CreateTempDirectory();

                outFile = Path.Combine(dir, what + ".json");
                placeholders["path"] = outFile;
            }

            _log.Verbose($"Running the {what} export command.");
            var (exit, stdout, stderr) = await HubCommand.RunAsync(command, placeholders, null, _spec.CommandTimeout, ct, what == "manifests" ? "-ManifestCommand" : "-ConfigCommand").ConfigureAwait(false);
            if (exit != 0)
            {
                throw new HubDrException("SourceCommandFailed", HubErrorCategory.InvalidOperation,
                    $"The {what} export command exited with code {exit}: {_redactor.RedactText(stderr.Trim())}") { Target = what };
            }

            if (outFile is not null)
            {
                if (!File.Exists(outFile))
                {
                    throw new HubDrException("SourceCommandFailed", HubErrorCategory.InvalidOperation,
                        $"The {what} export command succeeded but did not write {{path}}.") { Target = what };
                }

                return await File.ReadAllBytesAsync(outFile, ct).ConfigureAwait(false);
            }

            return stdout;
        }
        finally
        {
            if (dir is not null)
            {
                IO.PrivateFiles.Delete(dir);
            }
        }
    }
}
