using HubDr.Engine.Processes;

namespace HubDr.Engine.IO;

/// <summary>
/// The memory the backup pipeline may use beyond PowerShell itself, and how it is spent: zstd worker threads and their
/// job buffers, the dump's part buffer, the compress → encrypt hand-off buffers, the database tool's read-ahead and the
/// store upload's part buffers (docs/platforms.md, "Memory"). Without a cap HubDr uses its throughput defaults (zstd
/// workers grow with the core count: about 19 MiB each plus shared job buffers); with a cap (-MaxMemoryMB /
/// Performance.MaxMemoryMB, or automatically in Azure Automation) the buffers are reduced in a fixed order until the
/// estimate fits.
/// </summary>
public sealed record PipelineLimits
{
    private const int MiB = 1024 * 1024;

    /// <summary>The cap applied automatically in Azure Automation (the cloud sandbox allows about 400 MB for the whole job).</summary>
    public const int AutomationDefaultMaxMemoryMB = 64;

    /// <summary>zstd background workers (0: compress on the pipeline thread).</summary>
    public int CompressionWorkers { get; init; }

    /// <summary>zstd job size in bytes when it has workers (null: zstd's own, 4 × the window = 8 MiB for the default profile).</summary>
    public int? CompressionJobSize { get; init; }

    /// <summary>The dump's part buffer (the archive's part size).</summary>
    public int PartSize { get; init; } = 16 * MiB;

    /// <summary>Compressed bytes handed to the encrypt/sign/upload task: this many buffers…</summary>
    public int StageDepth { get; init; } = 8;

    /// <summary>… of this size.</summary>
    public int StageBufferSize { get; init; } = MiB;

    /// <summary>Read-ahead of a database tool's output (buffers of 1 MiB).</summary>
    public int ReadAheadDepth { get; init; } = 4;

    /// <summary>S3 part / Azure block size of the streaming upload.</summary>
    public int UploadPartSize { get; init; } = 8 * MiB;

    /// <summary>Parts uploading while the next one fills.</summary>
    public int UploadPartsInFlight { get; init; } = 2;

    /// <summary>The cap in MiB (null: none).</summary>
    public int? MaxMemoryMB { get; init; }

    /// <summary>Why these limits ("HubDr's defaults", "-MaxMemoryMB 64", "Azure Automation default (64 MB)").</summary>
    public string Reason { get; init; } = "HubDr's defaults";

    /// <summary>The estimate of what these buffers and workers take, in bytes (the model is documented in docs/platforms.md).</summary>
    public long EstimatedBytes =>
        CompressionCost(CompressionWorkers, CompressionJobSize ?? 8 * MiB)
        + PartSize
        + (long)(StageDepth + 1) * StageBufferSize
        + (long)ReadAheadDepth * MiB
        + (long)(UploadPartsInFlight + 1) * UploadPartSize;

    /// <summary>zstd (HubDr's default profile, 2 MiB window): one context, plus per worker its own context and two jobs, plus three shared job buffers.</summary>
    internal static long CompressionCost(int workers, int jobSize) =>
        workers == 0 ? 4L * MiB : 4L * MiB + workers * (3L * MiB + 2L * jobSize) + 3L * jobSize;

    /// <summary>HubDr's throughput defaults for <paramref name="processors"/> cores (one zstd worker on 2 cores, up to 8 on big machines).</summary>
    public static PipelineLimits Defaults(int processors) => new()
    {
        CompressionWorkers = processors <= 2 ? 1 : Math.Clamp(processors - 1, 1, 8),
    };

    /// <summary>
    /// The limits for a backup: <paramref name="maxMemoryMB"/> null = automatic (a cap of
    /// <see cref="AutomationDefaultMaxMemoryMB"/> in Azure Automation, none elsewhere), 0 = no cap, N = at most about N MiB.
    /// </summary>
    public static PipelineLimits Plan(int? maxMemoryMB, ExecutionEnvironment environment, int processors)
    {
        var defaults = Defaults(processors);
        string reason;
        int cap;
        switch (maxMemoryMB)
        {
            case 0:
                return defaults with { Reason = "no cap (MaxMemoryMB 0): HubDr's defaults" };
            case null when !environment.IsAzureAutomation:
                return defaults;
            case null:
                cap = AutomationDefaultMaxMemoryMB;
                reason = $"the Azure Automation default cap of {cap} MB ({(environment.Kind == ExecutionKind.AutomationSandbox ? "cloud sandbox" : "Hybrid Runbook Worker")}; set Performance.MaxMemoryMB or -MaxMemoryMB to change it)";
                break;
            default:
                cap = maxMemoryMB.Value;
                reason = $"MaxMemoryMB {cap}";
                break;
        }

        var budget = (long)cap * MiB;
        var plan = defaults with { MaxMemoryMB = cap, Reason = reason };
        // Reductions in order of what they cost: first what costs no throughput, then parallelism.
        var steps = new Func<PipelineLimits, PipelineLimits>[]
        {
            p => p with { CompressionWorkers = Math.Min(p.CompressionWorkers, 1) },
            p => p with { UploadPartsInFlight = 1 },
            p => p with { PartSize = 8 * MiB },
            p => p with { StageDepth = 4 },
            p => p with { CompressionJobSize = 4 * MiB },
            p => p with { PartSize = 4 * MiB },
            p => p with { UploadPartSize = 5 * MiB },
            p => p with { CompressionJobSize = 2 * MiB },
            p => p with { ReadAheadDepth = 2, StageDepth = 2 },
            p => p with { PartSize = 2 * MiB },
            p => p with { CompressionJobSize = MiB },
            p => p with { PartSize = MiB },
            p => p with { CompressionWorkers = 0, CompressionJobSize = null },
            p => p with { ReadAheadDepth = 1, StageDepth = 1 },
        };
        foreach (var step in steps)
        {
            if (plan.EstimatedBytes <= budget)
            {
                break;
            }

            plan = step(plan);
        }

        return plan;
    }

    /// <summary>One line for -Verbose.</summary>
    public string Describe()
    {
        var zstd = CompressionWorkers == 0 ? "zstd on the pipeline thread (no workers)"
            : $"zstd workers {CompressionWorkers}" + (CompressionJobSize is { } j ? $" ({j / MiB} MiB jobs)" : "");
        var fits = MaxMemoryMB is { } cap && EstimatedBytes > (long)cap * MiB ? $"; {cap} MB is below the smallest pipeline, which is used" : "";
        return $"Memory ({Reason}): {zstd}, dump part {PartSize / MiB} MiB, hand-off {StageDepth} × {StageBufferSize / MiB} MiB, " +
            $"tool read-ahead {ReadAheadDepth} MiB, upload {UploadPartsInFlight + 1} × {UploadPartSize / MiB} MiB; about {EstimatedBytes / MiB} MiB beyond PowerShell itself{fits}.";
    }

    private static readonly AsyncLocal<PipelineLimits?> Ambient = new();

    /// <summary>The limits of the backup running in this async flow (the defaults elsewhere): database engines read the tool read-ahead from it.</summary>
    public static PipelineLimits Current => Ambient.Value ?? Defaults(Environment.ProcessorCount);

    /// <summary>Makes these limits <see cref="Current"/> in this async flow until disposed.</summary>
    public IDisposable Apply()
    {
        var previous = Ambient.Value;
        Ambient.Value = this;
        return new Restore(previous);
    }

    private sealed class Restore(PipelineLimits? previous) : IDisposable
    {
        public void Dispose() => Ambient.Value = previous;
    }
}
