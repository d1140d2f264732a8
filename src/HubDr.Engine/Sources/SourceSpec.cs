namespace HubDr.Engine.Sources;

/// <summary>Where module manifests and configuration come from (runbook steps 2 and 3).</summary>
public sealed class SourceSpec
{
    /// <summary>Files or folders copied under manifests/ in the archive.</summary>
    public IReadOnlyList<string> ManifestPaths { get; init; } = [];

    /// <summary>E.g. "hub-cli export-manifests --output {path}". Without {path} its standard output is taken.</summary>
    public string? ManifestCommand { get; init; }

    /// <summary>Files or folders copied (redacted) under config/ in the archive.</summary>
    public IReadOnlyList<string> ConfigPaths { get; init; } = [];

    /// <summary>E.g. "hub-cli export-config --output {path}". Without {path} its standard output is taken.</summary>
    public string? ConfigCommand { get; init; }

    /// <summary>Environment variables whose names start with one of these (case-insensitive) go to config/env.json, redacted.</summary>
    public IReadOnlyList<string> EnvironmentPrefixes { get; init; } = [];

    /// <summary>Extra names (exact, or wildcards with '*') whose values are always redacted, in addition to the built-in patterns.</summary>
    public IReadOnlyList<string> SecretNames { get; init; } = [];

    /// <summary>Names (exact, or wildcards with '*') that are never redacted BY NAME (values that look like secrets still are).</summary>
    public IReadOnlyList<string> NotSecretNames { get; init; } = [];

    /// <summary>Time limit of one export command.</summary>
    public TimeSpan CommandTimeout { get; init; } = TimeSpan.FromMinutes(10);
}

/// <summary>One small file that goes into the archive as is.</summary>
public sealed record CollectedFile(string ArchiveName, byte[] Content, string Kind);
