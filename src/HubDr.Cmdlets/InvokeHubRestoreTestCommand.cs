using System.Collections;
using System.Diagnostics;
using System.Management.Automation;
using System.Net;
using System.Net.Sockets;
using System.Security;
using System.Text.Json;
using HubDr.Cmdlets.Infrastructure;
using HubDr.Engine;
using HubDr.Engine.Backup;
using HubDr.Engine.Crypto;
using HubDr.Engine.Databases;
using HubDr.Engine.RestoreTest;
using HubDr.Engine.RestoreTest.Http;
using HubDr.Engine.Stores;

namespace HubDr.Cmdlets;

/// <summary>
/// Invoke-HubRestoreTest: the runbook's weekly restore test. Picks the latest backup of the last 7 days (or takes one
/// from the pipeline), verifies its signature with trusted keys, restores it into a throwaway staging database and
/// folder, starts the Hub service against it, runs the smoke tests (built-in database checks, declarative HTTP steps,
/// the operator's own Pester tests), scans the service's logs for errors, checks that every retained backup is still
/// decryptable with the keys you hold, measures RTO and RPO against their targets, archives a JSON + JUnit report in
/// the store, alerts on failure, and always cleans up staging (unless -KeepStaging).
/// </summary>
[Cmdlet(VerbsLifecycle.Invoke, "HubRestoreTest", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Low, DefaultParameterSetName = "Store")]
[OutputType(typeof(HubRestoreTestResult))]
public sealed class InvokeHubRestoreTestCommand : HubStoreCmdletBase
{
    [Parameter(Mandatory = true, ValueFromPipeline = true, ParameterSetName = "Pipeline")]
    public HubBackup InputObject { get; set; } = null!;

    /// <summary>The store (or the Store setting). A piped HubBackup carries its own store.</summary>
    // By property name ONLY in the "Id" set: PowerShell first tries to bind a piped object within the default set, and a
    // Store/Hub bound there would keep an object with a BackupId (an Import-Csv row) out of the "Id" set.
    [Parameter(Position = 0, ParameterSetName = "Id", ValueFromPipelineByPropertyName = true)]
    [Parameter(Position = 0, ParameterSetName = "Store")]
    [Parameter(Position = 0, ParameterSetName = "Pipeline")]
    [HubSetting("Store")]
    public string? Store { get; set; }

    [Parameter(ParameterSetName = "Id", ValueFromPipelineByPropertyName = true)]
    [Parameter(ParameterSetName = "Store")]
    [HubSetting("Hub")]
    [ArgumentCompleter(typeof(HubNameCompleter))]
    public string? Hub { get; set; }

    /// <summary>Test this backup instead of the latest one (bound by property name, e.g. from Import-Csv).</summary>
    [Parameter(Mandatory = true, ValueFromPipelineByPropertyName = true, ParameterSetName = "Id")]
    [ArgumentCompleter(typeof(BackupIdCompleter))]
    public string BackupId { get; set; } = "";

    /// <summary>How old the newest backup may be (default 7 days): an older one fails the test.</summary>
    [Parameter(ParameterSetName = "Store")]
    [HubSetting("RestoreTest.MaxBackupAge")]
    public HubDuration? MaxBackupAge { get; set; }

    /// <summary>Engine of the staging database; default: the backup's.</summary>
    [Parameter]
    [ValidateSet("sqlite", "postgres", "postgresql", "mysql", "mariadb")]
    [HubSetting("RestoreTest.Engine")]
    public string? StagingEngine { get; set; }

    /// <summary>PostgreSQL/MySQL staging server (connection string without password); a throwaway database hubdr_rt_* is created on it.</summary>
    [Parameter]
    [HubSetting("RestoreTest.ConnectionString")]
    public string? StagingConnectionString { get; set; }

    [Parameter]
    [Credential]
    public PSCredential? StagingCredential { get; set; }

    /// <summary>Folder under which the run's staging folder is created (default: the temp folder).</summary>
    [Parameter]
    [HubSetting("RestoreTest.StagingPath")]
    public string? StagingPath { get; set; }

    /// <summary>
    /// Starts the Hub service against staging (no shell). Placeholders: {engine} {connection} {database} {files} {port} {url}.
    /// Its output is captured and scanned for -ErrorPattern. Stopped at the end.
    /// </summary>
    [Parameter]
    [HubSetting("RestoreTest.ServiceCommand")]
    public string? ServiceCommand { get; set; }

    /// <summary>Environment for the service command; values may use the placeholders and {password} (the staging DB password).</summary>
    [Parameter]
    [HubSetting("RestoreTest.ServiceEnvironment")]
    public Hashtable? ServiceEnvironment { get; set; }

    /// <summary>Alternative to -ServiceCommand: a script block given a hashtable (Engine, ConnectionString, Database, FilesPath, Port, Url) that starts the service and returns its base URL; its output is scanned as logs.</summary>
    [Parameter]
    public ScriptBlock? StartService { get; set; }

    /// <summary>Stops what -StartService started; receives the same hashtable.</summary>
    [Parameter]
    public ScriptBlock? StopService { get; set; }

    [Parameter]
    [HubSetting("RestoreTest.HealthPath")]
    public string HealthPath { get; set; } = "/health";

    [Parameter]
    [HubSetting("RestoreTest.ServiceStartTimeout")]
    public HubDuration ServiceStartTimeout { get; set; } = TimeSpan.FromSeconds(90);

    /// <summary>Declarative HTTP smoke suite (JSON, docs/smoke-tests.md); default: the built-in auth / module install / transaction suite.</summary>
    [Parameter]
    [HubSetting("RestoreTest.SmokeSuite")]
    public string? SmokeSuitePath { get; set; }

    /// <summary>Variables for the smoke suite (e.g. @{ fromAccount = '1' }).</summary>
    [Parameter]
    public Hashtable? SmokeVariable { get; set; }

    /// <summary>The smoke-test user: becomes the suite's ${username} and ${password}.</summary>
    [Parameter]
    [Credential]
    public PSCredential? SmokeCredential { get; set; }

    /// <summary>The operator's own Pester tests, run in a separate pwsh with the staging details as -Data @{ Staging = … }.</summary>
    [Parameter]
    [HubSetting("RestoreTest.PesterPath")]
    public string[]? PesterPath { get; set; }

    /// <summary>Regular expressions that fail the test when they match a service log line. Default: ERROR, FATAL, Unhandled exception, panic:.</summary>
    [Parameter]
    [HubSetting("RestoreTest.ErrorPatterns")]
    public string[]? ErrorPattern { get; set; }

    [Parameter]
    [HubSetting("Rto")]
    public HubDuration? RtoTarget { get; set; }

    [Parameter]
    [HubSetting("Rpo")]
    public HubDuration? RpoTarget { get; set; }

    [Parameter]
    [HubSetting("Keys.SecretKeys")]
    public string[]? SecretKeyPath { get; set; }

    [Parameter]
    public SecureString? Passphrase { get; set; }

    [Parameter]
    [HubSetting("Keys.TrustedSigners")]
    public string[]? TrustedSignerKeyPath { get; set; }

    /// <summary>Key rotation history: backups that only retired keys can decrypt are reported.</summary>
    [Parameter]
    [HubSetting("Keys.Metadata")]
    public string? KeyMetadataPath { get; set; }

    /// <summary>
    /// Accept a test without the application: no -ServiceCommand/-StartService, so the service start and the smoke tests
    /// are skipped and the verdict says "database only". Without it such a test fails (the runbook's test IS the smoke tests).
    /// </summary>
    [Parameter]
    [HubSetting("RestoreTest.DatabaseOnly")]
    public SwitchParameter DatabaseOnly { get; set; }

    /// <summary>Leave the staging database and folder for inspection.</summary>
    [Parameter]
    public SwitchParameter KeepStaging { get; set; }

    /// <summary>Do not archive the report in the store.</summary>
    [Parameter]
    public SwitchParameter NoReport { get; set; }

    protected override void ProcessRecord()
    {
        Guarded(() =>
        {
            var spec = ParameterSetName == "Pipeline" ? (InputObject.StoreSpec as StoreSpec ?? BuildStoreSpec(InputObject.Store)) : BuildStoreSpec(Store);
            var hub = ParameterSetName == "Pipeline" ? InputObject.Hub : RequireHub(Hub);
            if (!ShouldProcess($"hub '{hub}' in {spec.Uri}", "Restore the latest backup into a throwaway staging environment and run smoke tests"))
            {
                return;
            }

            var pass = ResolvePassphrase(Passphrase, "secret key");
            try
            {
                RunTest(spec, ObjectLayout.ValidateHub(hub), pass);
            }
            finally
            {
                Secrets.Clear(pass);
            }
        });
    }

    private void RunTest(StoreSpec spec, string hub, char[] pass)
    {
        // Where child processes are not allowed (the Azure Automation sandbox), refuse before any work.
        var processNeeds = new List<string>();
        processNeeds.AddRange(Engine.Processes.ProcessStarter.DatabaseNeeds(StagingEngine, restore: true));
        if (!string.IsNullOrWhiteSpace(ServiceCommand))
        {
            processNeeds.Add("-ServiceCommand");
        }

        if (PesterPath is { Length: > 0 })
        {
            processNeeds.Add(PesterNeed);
        }

        Engine.Processes.ProcessStarter.EnsureAllowed(processNeeds);

        var started = DateTimeOffset.UtcNow;
        var clock = Stopwatch.StartNew();
        var report = new RestoreTestReport { Hub = hub, StartedUtc = started };
        var rto = RtoTarget?.ToTimeSpan("-RtoTarget (Rto)") ?? TimeSpan.FromHours(4);
        var rpo = RpoTarget?.ToTimeSpan("-RpoTarget (Rpo)") ?? TimeSpan.FromHours(1);
        var maxAge = MaxBackupAge?.ToTimeSpan("-MaxBackupAge") ?? TimeSpan.FromDays(7);
        var startTimeout = ServiceStartTimeout.ToTimeSpan("-ServiceStartTimeout");
        var trusted = KeyFiles.LoadPublic(ResolvePaths(TrustedSignerKeyPath), "trusted signer key");
        var secrets = KeyFiles.LoadSecret(ResolvePaths(SecretKeyPath), "secret (decryption) key");
        var metadataPath = KeyMetadataPath is not null ? ResolvePath(KeyMetadataPath) : null;
        var wantedId = ParameterSetName switch { "Pipeline" => InputObject.BackupId, "Id" => BackupId, _ => null };

        // 1. Which backup.
        var (listing, all) = RunEngine(async (log, ct) =>
        {
            await using var store = StoreFactory.Create(spec);
            await store.EnsureAvailableAsync(ct).ConfigureAwait(false);
            var list = await CatalogService.ListAsync(store, hub, ct).ConfigureAwait(false);
            BackupListing? pick;
            if (wantedId is not null)
            {
                pick = list.FirstOrDefault(b => b.BackupId == wantedId) ?? throw BackupNotFound(store.Location, hub, wantedId);
            }
            else
            {
                pick = list.Where(b => b.IsComplete && b.Created >= DateTimeOffset.UtcNow - maxAge).OrderByDescending(b => b.Created).FirstOrDefault();
                log.Verbose(pick is null ? $"No complete backup of '{hub}' in the last {maxAge.TotalDays:0.#} days." : $"Testing the latest backup {pick.BackupId} ({pick.Created:u}).");
            }

            return (pick, list);
        });

        if (StagingEngine is null && listing?.Catalog is { } listed)
        {
            // The staging engine is the backup's: a PostgreSQL/MariaDB backup is restored with their client tools.
            Engine.Processes.ProcessStarter.EnsureAllowed(Engine.Processes.ProcessStarter.DatabaseNeeds(listed.Engine, restore: true));
        }

        var steps = report.Steps;
        string? stagingDir = null;
        IDatabaseEngine? stagingEngine = null;
        ServiceProcess? service = null;
        Hashtable? stagingInfo = null;
        var scriptLogs = new List<string>();
        DatabaseSpec? db = null;
        try
        {
            if (listing is null || !listing.IsComplete)
            {
                throw new HubDrException("NoRecentBackup", HubErrorCategory.ObjectNotFound,
                    listing is null ? $"No complete backup of hub '{hub}' within the allowed age: the backups themselves are failing." : $"Backup {hub}/{listing.BackupId} is incomplete.");
            }

            report.BackupId = listing.BackupId;
            report.BackupCreatedUtc = listing.Created;

            // 2. Staging.
            var root = StagingPath is not null ? ResolvePath(StagingPath) : Path.GetTempPath();
            stagingDir = Path.Combine(root, $"hubdr-restoretest-{hub}-{started.UtcDateTime:yyyyMMddTHHmmss}-{Guid.NewGuid().ToString("N")[..6]}");
            Directory.CreateDirectory(stagingDir);
            var filesDir = Path.Combine(stagingDir, "files");
            var engineName = DatabaseEngineFactory.Normalize(StagingEngine ?? listing.Catalog!.Engine);
            var dbName = "hubdr_rt_" + Guid.NewGuid().ToString("N")[..10];
            string connection;
            if (engineName == "sqlite")
            {
                connection = "Data Source=" + Path.Combine(stagingDir, "hub.db");
            }
            else
            {
                var server = StagingConnectionString
                    ?? throw new HubDrException("StagingServerMissing", HubErrorCategory.InvalidArgument, $"A {engineName} restore test needs -StagingConnectionString (a server the test may create a throwaway database on).");
                var csb = new System.Data.Common.DbConnectionStringBuilder { ConnectionString = server };
                csb["Database"] = dbName;
                connection = csb.ConnectionString;
            }

            db = new DatabaseSpec { Engine = engineName, ConnectionString = connection, Credential = StagingCredential?.GetNetworkCredential() };
            stagingEngine = DatabaseEngineFactory.Create(db);
            WriteVerbose($"Staging: {engineName} {DatabaseParameters.Display(db)}, files in {filesDir}.");

            // 3. Fetch, verify, restore.
            RestoreOutcome? outcome = null;
            var restoreClock = Stopwatch.StartNew();
            try
            {
                var request = new RestoreRequest
                {
                    Store = spec,
                    Hub = hub,
                    BackupId = listing.BackupId,
                    TrustedSigners = trusted,
                    SecretKeys = secrets,
                    PassphraseFor = _ => (char[])pass.Clone(),
                    Database = db,
                    FilesTarget = filesDir,
                };
                outcome = RunEngine((log, ct) => RestoreService.RestoreAsync(request, log, ct));
                report.SignatureStatus = outcome.Verification.Status.ToString();
                report.TimingsSeconds["verify"] = outcome.VerifyDuration.TotalSeconds;
                report.TimingsSeconds["restore"] = outcome.RestoreDuration.TotalSeconds;
                report.TimingsSeconds["databaseChecks"] = outcome.CheckDuration.TotalSeconds;
                Step("restore", "verify signature", true, outcome.VerifyDuration, outcome.Verification.Reason);
                Step("restore", "decrypt and restore", true, outcome.RestoreDuration, $"{outcome.FilesRestored.Count} file(s), database {engineName}, decrypted with {outcome.DecryptedWithKey}");
            }
            catch (Exception e) when (IsFailure(e))
            {
                var h = e as HubDrException;
                report.SignatureStatus = h?.ErrorId == "BackupSignatureInvalid" ? "Invalid" : report.SignatureStatus;
                Step("restore", "verify and restore", false, restoreClock.Elapsed, (h?.ErrorId is { } id ? id + ": " : "") + e.Message);
                throw new RestoreTestAbort();
            }

            // 4. Built-in database checks.
            var mismatches = outcome.RowCounts.Where(c => !c.Matches).ToList();
            Step("database", "row counts equal the manifest", mismatches.Count == 0, outcome.CheckDuration,
                mismatches.Count == 0 ? $"{outcome.RowCounts.Count} table(s), {outcome.RowCounts.Sum(c => c.Actual)} rows" : string.Join("; ", mismatches.Select(m => $"{m.Table}: expected {m.Expected}, got {m.Actual}")));
            Step("database", "integrity and every table readable", outcome.IntegrityProblems.Count == 0, TimeSpan.Zero,
                outcome.IntegrityProblems.Count == 0 ? "ok" : string.Join("; ", outcome.IntegrityProblems.Take(10)));

            // 5. Start Hub services.
            var port = FreePort();
            var url = $"http://127.0.0.1:{port}";
            stagingInfo = new Hashtable(StringComparer.OrdinalIgnoreCase)
            {
                ["Engine"] = engineName,
                ["ConnectionString"] = connection,
                ["Database"] = engineName == "sqlite" ? Path.Combine(stagingDir, "hub.db") : dbName,
                ["FilesPath"] = filesDir,
                ["Port"] = port,
                ["Url"] = url,
                ["BackupId"] = listing.BackupId,
            };
            string? baseUrl = null;
            var serviceClock = Stopwatch.StartNew();
            var command = ServiceCommand;
            if (command is not null)
            {
                var placeholders = stagingInfo.Cast<DictionaryEntry>().ToDictionary(e => e.Key.ToString()!.ToLowerInvariant(), e => Convert.ToString(e.Value, System.Globalization.CultureInfo.InvariantCulture)!);
                placeholders["connection"] = connection;
                placeholders["files"] = filesDir;
                var env = new Dictionary<string, string?>
                {
                    ["HUBDR_STAGING_ENGINE"] = engineName,
                    ["HUBDR_STAGING_CONNECTION"] = connection,
                    ["HUBDR_STAGING_FILES"] = filesDir,
                    ["HUBDR_STAGING_URL"] = url,
                };
                var password = StagingCredential?.GetNetworkCredential().Password;
                foreach (DictionaryEntry e in ServiceEnvironment ?? new Hashtable())
                {
                    env[e.Key.ToString()!] = Convert.ToString(e.Value, System.Globalization.CultureInfo.InvariantCulture)?.Replace("{password}", password ?? "", StringComparison.Ordinal);
                }

                service = ServiceProcess.Start(command, placeholders, env);
                baseUrl = url;
            }
            else if (StartService is not null)
            {
                foreach (var o in StartService.Invoke(stagingInfo))
                {
                    var text = o?.BaseObject?.ToString() ?? "";
                    if (Uri.TryCreate(text, UriKind.Absolute, out var u) && u.Scheme.StartsWith("http", StringComparison.Ordinal))
                    {
                        baseUrl = text;
                    }
                    else
                    {
                        scriptLogs.Add(text);
                    }
                }

                baseUrl ??= url;
            }

            report.BaseUrl = baseUrl;
            if (baseUrl is not null)
            {
                var health = RunEngine((log, ct) => HttpSmokeRunner.WaitForHealthyAsync(new Uri(baseUrl), HealthPath, startTimeout, ct));
                report.TimingsSeconds["serviceStart"] = serviceClock.Elapsed.TotalSeconds;
                var exited = service is { HasExited: true } ? $" (the service exited with code {service.ExitCode})" : "";
                Step("service", "start and become healthy", health.Passed, serviceClock.Elapsed, health.Message + exited);

                // 6. Declarative HTTP smoke tests.
                var suitePath = SmokeSuitePath is not null ? ResolvePath(SmokeSuitePath) : null;
                var suite = suitePath is null ? SmokeSuite.Default : SmokeSuite.Load(suitePath);
                var variables = new Dictionary<string, string>(StringComparer.Ordinal);
                foreach (DictionaryEntry e in Settings.RestoreTest.SmokeVariables ?? new Hashtable())
                {
                    variables[e.Key.ToString()!] = Convert.ToString(e.Value, System.Globalization.CultureInfo.InvariantCulture) ?? "";
                }

                foreach (DictionaryEntry e in SmokeVariable ?? new Hashtable())
                {
                    variables[e.Key.ToString()!] = Convert.ToString(e.Value, System.Globalization.CultureInfo.InvariantCulture) ?? "";
                }

                if (SmokeCredential is not null)
                {
                    variables["username"] = SmokeCredential.UserName;
                    variables["password"] = SmokeCredential.GetNetworkCredential().Password;
                }

                if (health.Passed)
                {
                    var smokeClock = Stopwatch.StartNew();
                    var results = RunEngine((log, ct) => HttpSmokeRunner.RunAsync(new Uri(baseUrl), suite, variables, TimeSpan.FromSeconds(30), log, ct));
                    report.TimingsSeconds["httpSmoke"] = smokeClock.Elapsed.TotalSeconds;
                    foreach (var res in results)
                    {
                        steps.Add(new RestoreTestStep { Kind = "http", Name = $"{res.Suite}: {res.Name}", Passed = res.Passed, Skipped = res.Skipped, DurationSeconds = res.Duration.TotalSeconds, Message = res.Message });
                    }
                }
                else
                {
                    steps.Add(new RestoreTestStep { Kind = "http", Name = suite.Name, Passed = false, Skipped = true, Message = "skipped: the service never became healthy" });
                }
            }
            else
            {
                // Not started, so not tested: the skipped steps are in the result and the verdict says so.
                var why = "skipped: no -ServiceCommand or -StartService" + (DatabaseOnly.IsPresent ? " (-DatabaseOnly)" : "; the application was not tested");
                steps.Add(new RestoreTestStep { Kind = "service", Name = "start and become healthy", Skipped = true, Message = why });
                steps.Add(new RestoreTestStep { Kind = "http", Name = "smoke tests (auth, module install, sample transaction)", Skipped = true, Message = why });
                WriteVerbose("No -ServiceCommand or -StartService: the service start and the HTTP smoke tests are skipped.");
            }

            // 7. The operator's Pester tests.
            var pesterPaths = ResolvePaths(PesterPath);
            if (pesterPaths.Length > 0)
            {
                steps.AddRange(RunPester(pesterPaths, stagingInfo, stagingDir));
            }
        }
        catch (RestoreTestAbort)
        {
            // The failing step is recorded; cleanup and the report follow.
        }
        catch (Exception e) when (IsFailure(e))
        {
            var h = e as HubDrException;
            report.Error = e.Message;
            report.ErrorId = h?.ErrorId ?? "UnexpectedError";
            Step("restore", "restore test", false, TimeSpan.Zero, (h?.ErrorId is { } id ? id + ": " : "") + e.Message);
        }
        finally
        {
            // 8. Stop the service, monitor its logs, clean up staging.
            var logLines = new List<string>(scriptLogs);
            if (service is not null)
            {
                var svc = service;
                RunEngine(async (_, _) =>
                {
                    await svc.DisposeAsync().ConfigureAwait(false);
                    return true;
                });
                logLines.AddRange(service.Log);
            }

            if (StopService is not null && stagingInfo is not null)
            {
                try
                {
                    foreach (var o in StopService.Invoke(stagingInfo))
                    {
                        logLines.Add(o?.BaseObject?.ToString() ?? "");
                    }
                }
                catch (RuntimeException e)
                {
                    Step("service", "stop", false, TimeSpan.Zero, e.Message);
                }
            }

            if (service is not null || StartService is not null)
            {
                var patterns = ErrorPattern ?? [];
                var matches = LogScanner.Scan(logLines, patterns.Length > 0 ? patterns : LogScanner.DefaultPatterns);
                report.LogMatches.AddRange(matches);
                Step("logs", "no errors in the service log", matches.Count == 0, TimeSpan.Zero,
                    matches.Count == 0 ? $"{logLines.Count} line(s) scanned" : "matched: " + string.Join(" | ", matches.Take(5)));
            }

            if (!KeepStaging.IsPresent)
            {
                Cleanup(stagingEngine, stagingDir);
            }
            else if (stagingDir is not null)
            {
                WriteVerbose($"Staging kept: {stagingDir}" + (db is null ? "" : $", database {DatabaseParameters.Display(db)}"));
            }
        }

        // 9. Key rotation check over every retained backup.
        KeyMetadata? metadata = metadataPath is not null && File.Exists(metadataPath) ? KeyMetadata.Load(metadataPath) : null;
        var coverage = KeyCoverageReport.Check(all, secrets, metadata);
        report.UndecryptableBackups.AddRange(coverage.Undecryptable);
        foreach (var (k, v) in coverage.DependOnRetiredKeys)
        {
            report.BackupsOnRetiredKeys[k] = v;
        }

        Step("keys", "every retained backup decryptable with held keys", coverage.Passed, TimeSpan.Zero,
            coverage.Passed
                ? $"{coverage.BackupsChecked} backup(s) checked" + (coverage.DependOnRetiredKeys.Count > 0 ? $"; {coverage.DependOnRetiredKeys.Count} depend only on retired keys: keep those keys" : "")
                : "undecryptable: " + string.Join(", ", coverage.Undecryptable.Take(10)));

        // 10. RTO / RPO.
        var operable = clock.Elapsed;
        report.Rto = new TargetVerdict { TargetSeconds = rto.TotalSeconds, ActualSeconds = operable.TotalSeconds };
        var age = report.BackupCreatedUtc is { } created ? started - created : TimeSpan.MaxValue;
        report.Rpo = new TargetVerdict { TargetSeconds = rpo.TotalSeconds, ActualSeconds = age == TimeSpan.MaxValue ? double.MaxValue : age.TotalSeconds };
        // The runbook's restore test IS the application's smoke tests: a run that never started the application
        // did not test it, and only passes when the operator accepted that with -DatabaseOnly.
        var applicationTested = steps.Any(s => s.Kind == "service" && !s.Skipped);
        if (applicationTested)
        {
            Step("rto", "time to operable within RTO", report.Rto.Met, TimeSpan.Zero, report.Rto.ToString());
        }
        else
        {
            Step("rto", "time to restore the database within RTO", report.Rto.Met, TimeSpan.Zero,
                report.Rto + " (the application was not started: this is not the time to operable)");
        }

        Step("rpo", "backup age within RPO", report.Rpo.Met, TimeSpan.Zero, report.BackupCreatedUtc is null ? "no backup" : report.Rpo.ToString());
        report.FinishedUtc = DateTimeOffset.UtcNow;
        var checksPassed = steps.Count > 0 && steps.Where(s => !s.Skipped).All(s => s.Passed);
        report.DatabaseOnly = !applicationTested;
        report.Passed = checksPassed && (applicationTested || DatabaseOnly.IsPresent);
        report.Verdict = !report.Passed ? "Failed" : applicationTested ? "Passed" : "Passed (database only)";

        // 11. Archive the report.
        string? reportKey = null;
        if (!NoReport.IsPresent)
        {
            try
            {
                reportKey = RunEngine(async (_, ct) =>
                {
                    await using var store = StoreFactory.Create(spec);
                    return await report.WriteToStoreAsync(store, ct).ConfigureAwait(false);
                });
            }
            catch (Exception e) when (IsFailure(e))
            {
                WriteWarning($"The report could not be archived in the store: {e.Message}");
            }
        }

        var failed = steps.Where(s => !s.Passed && !s.Skipped).Select(f => $"[{f.Kind}] {f.Name}: {f.Message}").ToList();
        if (!applicationTested && !DatabaseOnly.IsPresent)
        {
            failed.Insert(0, "the application was not tested: no -ServiceCommand or -StartService, so the service start and the smoke tests were skipped (pass -DatabaseOnly to accept a database-only test)");
        }

        var summary = report.Passed
            ? applicationTested
                ? $"Restore test of {hub}/{report.BackupId} passed: operable in {TargetVerdict.Human(operable.TotalSeconds)}."
                : $"Restore test of {hub}/{report.BackupId} passed, database only (the application was not started or smoke-tested): restored and checked in {TargetVerdict.Human(operable.TotalSeconds)}."
            : $"Restore test of {hub}/{report.BackupId ?? "(no backup)"} FAILED: " + string.Join("; ", failed.Take(5));
        Observe("restore_test", hub, report.BackupId, report.Passed, operable, null,
            report.Passed ? null : new HubDrException("RestoreTestFailed", HubErrorCategory.InvalidData, summary), spec,
            new Dictionary<string, string> { ["rto"] = report.Rto.ToString(), ["rpo"] = report.Rpo.ToString(), ["report"] = reportKey ?? "" }, summary);

        var result = new HubRestoreTestResult
        {
            Hub = hub,
            BackupId = report.BackupId,
            BackupCreated = Mapper.Local(report.BackupCreatedUtc),
            Passed = report.Passed,
            Verdict = report.Verdict,
            DatabaseOnly = report.DatabaseOnly,
            SignatureStatus = report.SignatureStatus,
            TimeToOperableSeconds = operable.TotalSeconds,
            RtoTargetSeconds = rto.TotalSeconds,
            RtoMet = report.Rto.Met,
            BackupAgeSeconds = age == TimeSpan.MaxValue ? 0 : age.TotalSeconds,
            RpoTargetSeconds = rpo.TotalSeconds,
            RpoMet = report.Rpo.Met,
            Steps = new(steps.Select(s => new HubRestoreTestStep { Kind = s.Kind, Name = s.Name, Passed = s.Passed && !s.Skipped, Skipped = s.Skipped, DurationSeconds = s.DurationSeconds, Message = s.Message })),
            LogMatches = new(report.LogMatches),
            UndecryptableBackups = new(report.UndecryptableBackups),
            BackupsOnRetiredKeys = new(report.BackupsOnRetiredKeys.Select(k => $"{k.Key} ({k.Value})")),
            BaseUrl = report.BaseUrl,
            StagingPath = KeepStaging.IsPresent ? stagingDir : null,
            ReportLocation = reportKey is null ? null : spec.Uri.TrimEnd('/') + "/" + reportKey,
            Started = Mapper.Local(started),
            Error = report.Error,
        };
        if (!report.Passed)
        {
            WriteError(new ErrorRecord(new HubDrException("RestoreTestFailed", HubErrorCategory.InvalidData, summary), "RestoreTestFailed", ErrorCategory.InvalidResult, result));
        }

        WriteObject(result);

        void Step(string kind, string name, bool passed, TimeSpan duration, string message) =>
            steps.Add(new RestoreTestStep { Kind = kind, Name = name, Passed = passed, DurationSeconds = duration.TotalSeconds, Message = RestoreTestReport.Clean(message) });
    }

    private const string PesterNeed = "-PesterPath (Pester runs in a child pwsh)";

    private List<RestoreTestStep> RunPester(string[] paths, Hashtable staging, string stagingDir)
    {
        var steps = new List<RestoreTestStep>();
        void AddPesterStep(string name, bool passed, TimeSpan duration, string message, bool skipped = false) =>
            steps.Add(new RestoreTestStep { Kind = "pester", Name = name, Passed = passed, Skipped = skipped, DurationSeconds = duration.TotalSeconds, Message = RestoreTestReport.Clean(message) });

        var clock = Stopwatch.StartNew();
        // The Pester this session uses (if any), else whatever Import-Module Pester finds.
        var pesterModule = ScriptBlock.Create("$m = Get-Module Pester | Select-Object -First 1; if ($m) { Join-Path $m.ModuleBase 'Pester.psd1' }").Invoke().FirstOrDefault()?.BaseObject as string ?? "Pester";
        var dataFile = Path.Combine(stagingDir, "staging.json");
        var resultFile = Path.Combine(stagingDir, "pester-results.json");
        File.WriteAllText(dataFile, JsonSerializer.Serialize(staging.Cast<DictionaryEntry>().ToDictionary(e => e.Key.ToString()!, e => e.Value?.ToString())));
        var script = Path.Combine(stagingDir, "run-pester.ps1");
        File.WriteAllText(script, """
            param($PesterModule, $DataFile, $ResultFile, [string] $Paths)
            $ErrorActionPreference = 'Stop'
            $PSStyle.OutputRendering = 'PlainText'
            Import-Module $PesterModule -MinimumVersion 5.0
            $staging = Get-Content -LiteralPath $DataFile -Raw | ConvertFrom-Json -AsHashtable
            $config = New-PesterConfiguration
            $config.Run.Container = New-PesterContainer -Path ($Paths -split ';') -Data @{ Staging = $staging }
            $config.Run.PassThru = $true
            $config.Output.Verbosity = 'None'
            $r = Invoke-Pester -Configuration $config
            @($r.Tests | ForEach-Object {
                [ordered]@{ Name = $_.ExpandedPath; Result = "$($_.Result)"; Seconds = $_.Duration.TotalSeconds; Message = if ($_.ErrorRecord) { "$($_.ErrorRecord[0])" } else { '' } }
            }) | ConvertTo-Json -Depth 3 -AsArray | Set-Content -LiteralPath $ResultFile
            """);
        var exe = Environment.ProcessPath ?? "pwsh";
        var psi = new ProcessStartInfo(exe) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        if (Path.GetFileNameWithoutExtension(exe) == "dotnet")
        {
            psi.ArgumentList.Add(Path.Combine(SessionState.PSVariable.GetValue("PSHOME")?.ToString() ?? "", "pwsh.dll"));
        }

        foreach (var a in new[] { "-NoProfile", "-NonInteractive", "-File", script, "-PesterModule", pesterModule, "-DataFile", dataFile, "-ResultFile", resultFile, "-Paths" })
        {
            psi.ArgumentList.Add(a);
        }

        psi.ArgumentList.Add(string.Join(";", paths));
        psi.Environment["NO_COLOR"] = "1";
        if (StagingCredential is not null)
        {
            psi.Environment["HUBDR_STAGING_DB_PASSWORD"] = StagingCredential.GetNetworkCredential().Password;
        }

        using var p = Engine.Processes.ProcessStarter.Start(psi, PesterNeed);
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        p.WaitForExit();
        if (!File.Exists(resultFile))
        {
            AddPesterStep("Pester", false, clock.Elapsed, $"Pester did not run (exit {p.ExitCode}): {stderr.Result.Trim()} {stdout.Result.Trim()}".Trim());
            return steps;
        }

        using var doc = JsonDocument.Parse(File.ReadAllText(resultFile));
        foreach (var t in doc.RootElement.EnumerateArray())
        {
            var outcome = t.GetProperty("Result").GetString();
            AddPesterStep(t.GetProperty("Name").GetString() ?? "", outcome == "Passed", TimeSpan.FromSeconds(t.GetProperty("Seconds").GetDouble()), t.GetProperty("Message").GetString() ?? outcome ?? "", outcome is "Skipped" or "NotRun");
        }

        if (doc.RootElement.GetArrayLength() == 0)
        {
            AddPesterStep("Pester", false, clock.Elapsed, "The Pester tests ran no test.");
        }

        return steps;
    }

    private void Cleanup(IDatabaseEngine? engine, string? stagingDir)
    {
        if (engine is not null)
        {
            try
            {
                RunEngine(async (_, ct) =>
                {
                    await engine.DropTargetAsync(ct).ConfigureAwait(false);
                    return true;
                });
            }
            catch (Exception e) when (IsFailure(e))
            {
                WriteWarning($"Could not drop the staging database: {e.Message}");
            }
        }

        if (stagingDir is not null && Directory.Exists(stagingDir))
        {
            try
            {
                Directory.Delete(stagingDir, recursive: true);
            }
            catch (IOException e)
            {
                WriteWarning($"Could not remove the staging folder {stagingDir}: {e.Message}");
            }
        }
    }

    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    private sealed class RestoreTestAbort : Exception
    {
    }
}
