using System.Net;
using HubDr.Engine.RestoreTest.Http;
using Xunit;
using Xunit.Abstractions;

namespace HubDr.Engine.Tests.RestoreTest;

/// <summary>One seeded reference Hub service shared by the tests that keep its database intact.</summary>
public sealed class SeededHubFixture : IAsyncLifetime
{
    private readonly TempFolder _dir = new();

    public HubServiceProcess Service { get; private set; } = null!;

    public async Task InitializeAsync() =>
        Service = await HubServiceProcess.StartAsync(HubServiceProcess.CreateDatabase(_dir.Path));

    public async Task DisposeAsync()
    {
        if (Service is not null) await Service.DisposeAsync();
        _dir.Dispose();
    }
}

public sealed class HttpSmokeRunnerServiceTests(SeededHubFixture hub, ITestOutputHelper output) : IClassFixture<SeededHubFixture>
{
    private static readonly TimeSpan StepTimeout = TimeSpan.FromSeconds(15);

    private static Dictionary<string, string> Alice(string password = HubServiceProcess.AlicePassword) =>
        new() { ["username"] = "alice", ["password"] = password };

    private static string Describe(IEnumerable<SmokeStepResult> results) =>
        string.Join(Environment.NewLine, results.Select(r => $"{r.Name}: {(r.Passed ? "PASS" : "FAIL")} [{r.Status}] {r.Message}"));

    [Fact]
    public async Task DefaultSuite_AgainstSeededService_AllStepsPass_AndIsRepeatable()
    {
        var before = Convert.ToInt64(HubServiceProcess.QueryScalar(hub.Service.DbPath, "SELECT balance_cents FROM accounts WHERE id = 1"));
        var txBefore = Convert.ToInt64(HubServiceProcess.QueryScalar(hub.Service.DbPath, "SELECT COUNT(*) FROM transactions"));

        for (var run = 1; run <= 2; run++)
        {
            var results = await HttpSmokeRunner.RunAsync(hub.Service.BaseUrl, SmokeSuite.Default, Alice(), StepTimeout, CancellationToken.None);
            output.WriteLine(Describe(results));
            Assert.True(results.All(r => r.Passed), $"run {run}:{Environment.NewLine}{Describe(results)}");
            Assert.Equal(
                ["health", "login", "install-module", "list-modules", "read-source-account", "sample-transaction", "read-back-account"],
                results.Select(r => r.Name));
            Assert.All(results, r => Assert.Equal("hub-default", r.Suite));
            Assert.Equal(201, results.Single(r => r.Name == "sample-transaction").Status);
            Assert.DoesNotContain(results, r => r.Message.Contains(HubServiceProcess.AlicePassword, StringComparison.Ordinal));
        }

        // The flows really changed the hub database: two 100-cent transfers, two new modules.
        Assert.Equal(before - 200, Convert.ToInt64(HubServiceProcess.QueryScalar(hub.Service.DbPath, "SELECT balance_cents FROM accounts WHERE id = 1")));
        Assert.Equal(txBefore + 2, Convert.ToInt64(HubServiceProcess.QueryScalar(hub.Service.DbPath, "SELECT COUNT(*) FROM transactions")));
        Assert.True(Convert.ToInt64(HubServiceProcess.QueryScalar(hub.Service.DbPath, "SELECT COUNT(*) FROM modules WHERE name LIKE 'restore-smoke-%'")) >= 2);

        Assert.Contains(hub.Service.LogLines, l => l.Contains("Hub service started", StringComparison.Ordinal));
        Assert.DoesNotContain(hub.Service.LogLines, l => l.StartsWith("ERROR", StringComparison.Ordinal));
    }

    [Fact]
    public async Task WrongPassword_LoginFails_DependentStepsAreSkippedFailed_AndPasswordNeverShows()
    {
        const string wrong = "Wrong-Secret-Pass-42";
        var results = await HttpSmokeRunner.RunAsync(hub.Service.BaseUrl, SmokeSuite.Default, Alice(wrong), StepTimeout, CancellationToken.None);
        var all = Describe(results);
        output.WriteLine(all);

        Assert.True(results.Single(r => r.Name == "health").Passed, all);
        var login = results.Single(r => r.Name == "login");
        Assert.False(login.Passed, all);
        Assert.Equal(401, login.Status);
        Assert.Contains("expected HTTP 200 but got 401", login.Message);
        Assert.Contains("invalid username or password", login.Message);

        foreach (var name in new[] { "install-module", "list-modules", "read-source-account", "sample-transaction", "read-back-account" })
        {
            var r = results.Single(x => x.Name == name);
            Assert.False(r.Passed, all);
            Assert.True(r.Skipped, all);
            Assert.StartsWith("skipped: earlier step failed", r.Message);
            Assert.Null(r.Status);
        }
        Assert.DoesNotContain(wrong, all);
        Assert.DoesNotContain(hub.Service.LogLines, l => l.Contains(wrong, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Secrets_InPathHeadersAndResponses_AreMasked()
    {
        const string apiKey = "k3y-value-that-must-not-leak";
        var suite = SmokeSuite.Parse("""
        {
          "name": "masking",
          "steps": [
            { "name": "login", "method": "POST", "path": "/auth/login",
              "body": { "username": "${username}", "password": "${password}" },
              "capture": { "sessionValue": "token" } },
            { "name": "echo", "path": "/modules?apiKey=${apiKey}&t=${sessionValue}",
              "headers": { "Authorization": "Bearer ${sessionValue}" },
              "expectStatus": 418 },
            { "name": "login-again", "method": "POST", "path": "/auth/login", "dependsOn": [],
              "body": { "username": "${username}", "password": "${password}" },
              "expectJson": { "token": "not-this" } }
          ]
        }
        """);
        var vars = Alice();
        vars["apiKey"] = apiKey;
        var results = await HttpSmokeRunner.RunAsync(hub.Service.BaseUrl, suite, vars, StepTimeout, CancellationToken.None);
        var all = Describe(results);

        Assert.True(results[0].Passed, all);
        var echo = results[1];
        Assert.False(echo.Passed, all);
        Assert.Equal(200, echo.Status);
        Assert.Contains("expected HTTP 418 but got 200", echo.Message);
        Assert.Contains("apiKey=***", echo.Message);   // secret-named variable
        Assert.Contains("&t=***", echo.Message);        // captured from a "token" field
        Assert.DoesNotContain(apiKey, all);

        var again = results[2];
        Assert.False(again.Passed, all);
        Assert.Contains("'token' is \"***\", expected \"not-this\"", again.Message); // secret response fields are redacted
        Assert.DoesNotContain(HubServiceProcess.AlicePassword, all);
    }

    [Fact]
    public async Task ExpectationMismatch_ReportsPathActualAndExpected()
    {
        var suite = SmokeSuite.Parse("""
        {
          "name": "mismatch",
          "steps": [
            { "name": "health-db", "path": "/health", "expectJson": { "db": "postgres" } },
            { "name": "health-missing", "path": "/health", "dependsOn": [], "expectJson": { "uptime": "$any" } },
            { "name": "login", "method": "POST", "path": "/auth/login", "dependsOn": [],
              "body": { "username": "${username}", "password": "${password}" }, "capture": { "token": "token" } },
            { "name": "modules-any", "path": "/modules", "dependsOn": [], "headers": { "Authorization": "Bearer ${token}" },
              "expectJson": { "items[*].name": "no-such-module" } },
            { "name": "modules-ok", "path": "/modules", "dependsOn": [], "headers": { "Authorization": "Bearer ${token}" },
              "expectJson": { "items[*].name": "billing", "/items/0/name": "core", "count": "$any" } },
            { "name": "undefined-var", "path": "/accounts/${nope}", "dependsOn": [] }
          ]
        }
        """);
        var results = await HttpSmokeRunner.RunAsync(hub.Service.BaseUrl, suite, Alice(), StepTimeout, CancellationToken.None);
        var all = Describe(results);

        Assert.Contains("'db' is \"sqlite\", expected \"postgres\"", results[0].Message);
        Assert.Contains("'uptime' is missing from the response", results[1].Message);
        Assert.True(results[2].Passed, all);
        Assert.Contains("no element of 'items[*].name' equals \"no-such-module\"", results[3].Message);
        Assert.Contains("\"core\"", results[3].Message);
        Assert.True(results[4].Passed, all);
        Assert.False(results[5].Passed, all);
        Assert.False(results[5].Skipped, all);
        Assert.Contains("variable 'nope' is not set", results[5].Message);
    }

    [Fact]
    public async Task InsufficientFunds_Expect409_Passes_AndBalanceUnchanged()
    {
        var suite = SmokeSuite.Parse("""
        {
          "name": "funds",
          "steps": [
            { "name": "login", "method": "POST", "path": "/auth/login",
              "body": { "username": "${username}", "password": "${password}" }, "capture": { "token": "token" } },
            { "name": "before", "path": "/accounts/2", "headers": { "Authorization": "Bearer ${token}" },
              "capture": { "b": "balanceCents" } },
            { "name": "overdraw", "method": "POST", "path": "/transactions", "headers": { "Authorization": "Bearer ${token}" },
              "body": { "from": 2, "to": 3, "amountCents": "${b+1:number}" },
              "expectStatus": 409 },
            { "name": "after", "path": "/accounts/2", "headers": { "Authorization": "Bearer ${token}" },
              "expectJson": { "balanceCents": "${b}" } }
          ]
        }
        """);
        var results = await HttpSmokeRunner.RunAsync(hub.Service.BaseUrl, suite, Alice(), StepTimeout, CancellationToken.None);
        Assert.True(results.All(r => r.Passed), Describe(results));
    }
}

/// <summary>Tests that need their own service because they break its database.</summary>
public sealed class HubServiceBrokenDatabaseTests(ITestOutputHelper output)
{
    private static readonly TimeSpan StepTimeout = TimeSpan.FromSeconds(15);

    [Fact]
    public async Task DroppedTransactionsTable_TransactionStepFailsWithClearMessage()
    {
        using var dir = new TempFolder();
        var db = HubServiceProcess.CreateDatabase(dir.Path);
        await using var svc = await HubServiceProcess.StartAsync(db);
        HubServiceProcess.ExecuteSql(db, "DROP TABLE transactions;");

        var results = await HttpSmokeRunner.RunAsync(svc.BaseUrl, SmokeSuite.Default,
            new Dictionary<string, string> { ["username"] = "alice", ["password"] = HubServiceProcess.AlicePassword },
            StepTimeout, CancellationToken.None);
        var all = string.Join("\n", results.Select(r => $"{r.Name}: {r.Passed} {r.Message}"));
        output.WriteLine(all);
        output.WriteLine(svc.LogText);

        var health = results.Single(r => r.Name == "health");
        Assert.False(health.Passed, all);
        Assert.Equal(503, health.Status);
        Assert.Contains("schema check failed", health.Message);

        Assert.True(results.Single(r => r.Name == "login").Passed, all);
        Assert.True(results.Single(r => r.Name == "install-module").Passed, all);
        Assert.True(results.Single(r => r.Name == "read-source-account").Passed, all);

        var tx = results.Single(r => r.Name == "sample-transaction");
        Assert.False(tx.Passed, all);
        Assert.Equal(500, tx.Status);
        Assert.StartsWith("POST /transactions: expected HTTP 201 but got 500", tx.Message);
        Assert.Contains("no such table: transactions", tx.Message);

        var readBack = results.Single(r => r.Name == "read-back-account");
        Assert.True(readBack.Skipped, all);
        Assert.Contains("(sample-transaction)", readBack.Message);

        // The failed debit was rolled back with the request's DB transaction.
        Assert.Equal(100000L, Convert.ToInt64(HubServiceProcess.QueryScalar(db, "SELECT balance_cents FROM accounts WHERE id = 1")));
        Assert.Contains(svc.LogLines, l => l.StartsWith("ERROR POST /transactions failed", StringComparison.Ordinal) && l.Contains("no such table: transactions"));
        Assert.Contains(svc.LogLines, l => l.StartsWith("ERROR schema check failed", StringComparison.Ordinal));
    }

    [Fact]
    public async Task MissingSchema_HealthIs503_AndServiceLogsSchemaError()
    {
        using var dir = new TempFolder();
        var db = HubServiceProcess.CreateDatabase(dir.Path, schema: false);
        await using var svc = await HubServiceProcess.StartAsync(db);

        Assert.Contains(svc.LogLines, l => l.StartsWith("ERROR schema check failed:", StringComparison.Ordinal));

        using var http = new HttpClient();
        using var resp = await http.GetAsync(new Uri(svc.BaseUrl, "/health"));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, resp.StatusCode);
        var body = await resp.Content.ReadAsStringAsync();
        Assert.Contains("\"status\":\"unhealthy\"", body);
        Assert.Contains("\"db\":\"sqlite\"", body);

        var wait = await HttpSmokeRunner.WaitForHealthyAsync(svc.BaseUrl, "/health", TimeSpan.FromSeconds(1), CancellationToken.None);
        Assert.False(wait.Passed);
        Assert.Equal(503, wait.Status);
        Assert.Contains("did not answer 200", wait.Message);

        var results = await HttpSmokeRunner.RunAsync(svc.BaseUrl, SmokeSuite.Default,
            new Dictionary<string, string> { ["username"] = "alice", ["password"] = HubServiceProcess.AlicePassword },
            StepTimeout, CancellationToken.None);
        Assert.All(results, r => Assert.False(r.Passed));
        Assert.Contains("expected HTTP 200 but got 503", results[0].Message);
    }

    [Fact]
    public async Task HealthyService_WaitForHealthy_Passes()
    {
        using var dir = new TempFolder();
        await using var svc = await HubServiceProcess.StartAsync(HubServiceProcess.CreateDatabase(dir.Path, seed: false));
        var wait = await HttpSmokeRunner.WaitForHealthyAsync(svc.BaseUrl, "/health", TimeSpan.FromSeconds(10), CancellationToken.None);
        Assert.True(wait.Passed, wait.Message);
        Assert.Equal(200, wait.Status);
    }

    [Fact]
    public async Task NothingListening_StepsFailWithConnectionMessage_Quickly()
    {
        var url = new Uri($"http://127.0.0.1:{HubServiceProcess.FreePort()}");
        var results = await HttpSmokeRunner.RunAsync(url, SmokeSuite.Default,
            new Dictionary<string, string> { ["username"] = "alice", ["password"] = "x-secret-x" }, TimeSpan.FromSeconds(5), CancellationToken.None);
        Assert.Contains("could not reach http://127.0.0.1:", results[0].Message);
        Assert.Contains("could not reach", results[1].Message);
        Assert.All(results.Skip(2), r => Assert.True(r.Skipped, r.Message));
        Assert.DoesNotContain(results, r => r.Message.Contains("x-secret-x", StringComparison.Ordinal));
    }
}
