// Reference "Hub" web service for the restore-test smoke suite. See docs/smoke-tests.md.
//   dotnet HubService.dll --engine sqlite|postgres|mysql --connection "<conn string without password>" --urls http://127.0.0.1:5080
// The database password comes only from the HUBSVC_DB_PASSWORD environment variable.
using System.Data.Common;
using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using HubService;

// No config file watching: a restore-test service needs no reload, and watchers consume inotify instances.
Environment.SetEnvironmentVariable("DOTNET_hostBuilder__reloadConfigOnChange", "false");
var builder = WebApplication.CreateBuilder(args);
builder.Logging.ClearProviders();
builder.Logging.AddProvider(new HubLoggerProvider());

HubDb db;
try
{
    var engineText = builder.Configuration["engine"] ?? Environment.GetEnvironmentVariable("HUBSVC_ENGINE");
    var connection = builder.Configuration["connection"] ?? Environment.GetEnvironmentVariable("HUBSVC_CONNECTION");
    if (string.IsNullOrWhiteSpace(engineText) || string.IsNullOrWhiteSpace(connection))
        throw new ArgumentException("both --engine (sqlite|postgres|mysql) and --connection are required (or HUBSVC_ENGINE / HUBSVC_CONNECTION)");
    db = HubDb.Create(HubDb.ParseEngine(engineText), connection, Environment.GetEnvironmentVariable("HUBSVC_DB_PASSWORD"));
}
catch (ArgumentException e)
{
    HubLog.Error($"invalid configuration: {e.Message}");
    return 2;
}

var jsonOptions = new JsonSerializerOptions(JsonSerializerDefaults.Web);
var app = builder.Build();
var health = new HealthState();

// One "ERROR ..." line for every failed request; the client gets a short JSON error.
app.Use(async (ctx, next) =>
{
    var sw = Stopwatch.StartNew();
    try
    {
        await next(ctx);
    }
    catch (Exception e) when (e is not OperationCanceledException || !ctx.RequestAborted.IsCancellationRequested)
    {
        var kind = e is DbException ? "database error" : "internal error";
        HubLog.Error($"{ctx.Request.Method} {ctx.Request.Path} failed: {kind}: {e.GetType().Name}: {e.Message}");
        if (!ctx.Response.HasStarted)
        {
            ctx.Response.Clear();
            ctx.Response.StatusCode = StatusCodes.Status500InternalServerError;
            await ctx.Response.WriteAsJsonAsync(new { error = $"{kind}: {e.Message}" });
        }
    }
    // Path only: query strings may carry secrets.
    HubLog.Info($"{ctx.Request.Method} {ctx.Request.Path} -> {ctx.Response.StatusCode} ({sw.ElapsedMilliseconds} ms)");
});

app.MapGet("/health", async (CancellationToken ct) =>
{
    var problem = await db.CheckAsync(ct);
    health.Report(problem);
    return problem is null
        ? Results.Json(new { status = "ok", db = db.EngineName })
        : Results.Json(new { status = "unhealthy", db = db.EngineName, error = problem }, statusCode: StatusCodes.Status503ServiceUnavailable);
});

app.MapPost("/auth/login", async (LoginRequest? req, CancellationToken ct) =>
{
    if (req is null || string.IsNullOrEmpty(req.Username) || req.Password is null)
        return Error(400, "username and password are required");
    await using var c = await db.OpenAsync(ct);
    long? userId = null;
    string? stored = null;
    await using (var cmd = HubDb.Command(c, null, "SELECT id, password_hash FROM users WHERE username = @u", ("@u", req.Username)))
    await using (var r = await cmd.ExecuteReaderAsync(ct))
    {
        if (await r.ReadAsync(ct))
        {
            userId = Convert.ToInt64(r.GetValue(0));
            stored = r.GetString(1);
        }
    }
    var ok = Passwords.Verify(req.Password, stored ?? Passwords.Dummy) && userId is not null;
    if (!ok)
    {
        HubLog.Warn($"login failed for user '{req.Username}'");
        return Error(401, "invalid username or password");
    }
    var token = Passwords.NewToken();
    var expires = DateTimeOffset.UtcNow.AddHours(1);
    await using (var ins = HubDb.Command(c, null,
        "INSERT INTO sessions (token_hash, user_id, expires_at_unix) VALUES (@h, @u, @e)",
        ("@h", Passwords.TokenHash(token)), ("@u", userId!.Value), ("@e", expires.ToUnixTimeSeconds())))
        await ins.ExecuteNonQueryAsync(ct);
    return Results.Json(new { token, userId, expiresAt = expires.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ") });
});

app.MapGet("/modules", async (HttpContext ctx, CancellationToken ct) =>
{
    if (await AuthenticateAsync(ctx, ct) is null) return Unauthorized();
    await using var c = await db.OpenAsync(ct);
    var items = new JsonArray();
    await using var cmd = HubDb.Command(c, null, "SELECT id, name, version, installed_at, manifest FROM modules ORDER BY id");
    await using var r = await cmd.ExecuteReaderAsync(ct);
    while (await r.ReadAsync(ct))
        items.Add(ModuleJson(Convert.ToInt64(r.GetValue(0)), r.GetString(1), r.GetString(2), r.GetValue(3), Convert.ToString(r.GetValue(4))));
    return Results.Json(new JsonObject { ["count"] = items.Count, ["items"] = items });
});

app.MapPost("/modules/install", async (HttpContext ctx, InstallRequest? req, CancellationToken ct) =>
{
    if (await AuthenticateAsync(ctx, ct) is null) return Unauthorized();
    if (req is null || string.IsNullOrWhiteSpace(req.Name) || string.IsNullOrWhiteSpace(req.Version))
        return Error(400, "name and version are required");
    if (req.Name.Length > 190 || req.Version.Length > 64)
        return Error(400, "name (max 190) or version (max 64) too long");
    var manifest = req.Manifest is JsonObject m ? m.ToJsonString() : new JsonObject { ["name"] = req.Name, ["version"] = req.Version }.ToJsonString();
    await using var c = await db.OpenAsync(ct);
    await using var tx = await c.BeginTransactionAsync(ct);
    await using (var exists = HubDb.Command(c, tx, "SELECT COUNT(*) FROM modules WHERE name = @n", ("@n", req.Name)))
    {
        if (Convert.ToInt64(await exists.ExecuteScalarAsync(ct)) > 0)
            return Error(409, $"module '{req.Name}' is already installed");
    }
    var id = await db.InsertReturningIdAsync(c, tx,
        $"INSERT INTO modules (name, version, manifest) VALUES (@n, @v, {db.JsonParam("@m")})", ct,
        ("@n", req.Name), ("@v", req.Version), ("@m", manifest));
    object installedAt;
    await using (var sel = HubDb.Command(c, tx, "SELECT installed_at FROM modules WHERE id = @id", ("@id", id)))
        installedAt = (await sel.ExecuteScalarAsync(ct))!;
    await tx.CommitAsync(ct);
    HubLog.Info($"module installed: {req.Name} {req.Version} (id {id})");
    return Results.Json(ModuleJson(id, req.Name, req.Version, installedAt, manifest), statusCode: 201);
});

app.MapPost("/transactions", async (HttpContext ctx, TransferRequest? req, CancellationToken ct) =>
{
    var user = await AuthenticateAsync(ctx, ct);
    if (user is null) return Unauthorized();
    if (req is null || req.From is null || req.To is null || req.AmountCents is null)
        return Error(400, "from, to and amountCents are required");
    if (req.AmountCents <= 0) return Error(400, "amountCents must be positive");
    if (req.From == req.To) return Error(400, "from and to must be different accounts");

    await using var c = await db.OpenAsync(ct);
    await using var tx = await c.BeginTransactionAsync(ct);
    var from = await ReadAccountAsync(c, tx, req.From.Value, ct);
    if (from is null) return Error(404, $"account {req.From} not found");
    if (from.Value.Owner != user.Value) return Error(403, $"account {req.From} does not belong to the caller");
    if (await ReadAccountAsync(c, tx, req.To.Value, ct) is null) return Error(404, $"account {req.To} not found");

    // Conditional debit: no separate read-then-write race, works the same on all three engines.
    await using (var debit = HubDb.Command(c, tx,
        "UPDATE accounts SET balance_cents = balance_cents - @a WHERE id = @id AND balance_cents >= @a",
        ("@a", req.AmountCents.Value), ("@id", req.From.Value)))
    {
        if (await debit.ExecuteNonQueryAsync(ct) != 1)
        {
            await tx.RollbackAsync(ct);
            return Error(409, $"insufficient funds in account {req.From}");
        }
    }
    await using (var credit = HubDb.Command(c, tx,
        "UPDATE accounts SET balance_cents = balance_cents + @a WHERE id = @id", ("@a", req.AmountCents.Value), ("@id", req.To.Value)))
        await credit.ExecuteNonQueryAsync(ct);
    var id = await db.InsertReturningIdAsync(c, tx,
        "INSERT INTO transactions (from_account, to_account, amount_cents) VALUES (@f, @t, @a)", ct,
        ("@f", req.From.Value), ("@t", req.To.Value), ("@a", req.AmountCents.Value));
    var fromAfter = await ReadAccountAsync(c, tx, req.From.Value, ct);
    var toAfter = await ReadAccountAsync(c, tx, req.To.Value, ct);
    await tx.CommitAsync(ct);
    return Results.Json(new
    {
        id,
        amountCents = req.AmountCents.Value,
        from = new { id = req.From.Value, balanceCents = fromAfter!.Value.Balance },
        to = new { id = req.To.Value, balanceCents = toAfter!.Value.Balance },
    }, statusCode: 201);
});

app.MapGet("/accounts/{id:long}", async (long id, HttpContext ctx, CancellationToken ct) =>
{
    var user = await AuthenticateAsync(ctx, ct);
    if (user is null) return Unauthorized();
    await using var c = await db.OpenAsync(ct);
    var acct = await ReadAccountAsync(c, null, id, ct);
    if (acct is null) return Error(404, $"account {id} not found");
    if (acct.Value.Owner != user.Value) return Error(403, $"account {id} does not belong to the caller");
    return Results.Json(new { id, ownerUserId = acct.Value.Owner, balanceCents = acct.Value.Balance });
});

app.Lifetime.ApplicationStarted.Register(() =>
{
    var urls = string.Join(", ", app.Urls);
    HubLog.Info($"Hub service started (engine {db.EngineName}, listening on {urls})");
});

// Schema check before serving: a broken restore shows up in the log at once, /health keeps reporting it.
var startupProblem = await db.CheckAsync(CancellationToken.None);
health.Report(startupProblem);
if (startupProblem is null) HubLog.Info($"schema check ok ({db.EngineName})");

await app.RunAsync();
return 0;

async Task<long?> AuthenticateAsync(HttpContext ctx, CancellationToken ct)
{
    var header = ctx.Request.Headers.Authorization.ToString();
    if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)) return null;
    var token = header["Bearer ".Length..].Trim();
    if (token.Length == 0) return null;
    await using var c = await db.OpenAsync(ct);
    await using var cmd = HubDb.Command(c, null,
        "SELECT user_id FROM sessions WHERE token_hash = @h AND expires_at_unix > @now",
        ("@h", Passwords.TokenHash(token)), ("@now", DateTimeOffset.UtcNow.ToUnixTimeSeconds()));
    var v = await cmd.ExecuteScalarAsync(ct);
    return v is null or DBNull ? null : Convert.ToInt64(v);
}

static async Task<(long Owner, long Balance)?> ReadAccountAsync(DbConnection c, DbTransaction? tx, long id, CancellationToken ct)
{
    await using var cmd = HubDb.Command(c, tx, "SELECT owner_user_id, balance_cents FROM accounts WHERE id = @id", ("@id", id));
    await using var r = await cmd.ExecuteReaderAsync(ct);
    if (!await r.ReadAsync(ct)) return null;
    return (Convert.ToInt64(r.GetValue(0)), Convert.ToInt64(r.GetValue(1)));
}

static JsonObject ModuleJson(long id, string name, string version, object installedAt, string? manifest)
{
    JsonNode? m;
    try { m = JsonNode.Parse(string.IsNullOrEmpty(manifest) ? "{}" : manifest); }
    catch (JsonException) { m = manifest; }
    return new JsonObject
    {
        ["id"] = id,
        ["name"] = name,
        ["version"] = version,
        ["installedAt"] = HubDb.FormatTimestamp(installedAt),
        ["manifest"] = m,
    };
}

static IResult Error(int status, string message) => Results.Json(new { error = message }, statusCode: status);

static IResult Unauthorized() => Results.Json(new { error = "missing, invalid or expired bearer token" }, statusCode: 401);

record LoginRequest(string? Username, string? Password);
record InstallRequest(string? Name, string? Version, JsonNode? Manifest);
record TransferRequest(long? From, long? To, long? AmountCents);

/// <summary>Logs the schema/database state only when it changes, so a polling client cannot flood the log.</summary>
sealed class HealthState
{
    private readonly object _gate = new();
    private bool _checked;
    private string? _last;

    public void Report(string? problem)
    {
        lock (_gate)
        {
            if (_checked && problem == _last) return;
            var recovered = _checked && _last is not null && problem is null;
            _checked = true;
            _last = problem;
            if (problem is not null) HubLog.Error(problem);
            else if (recovered) HubLog.Info("database and schema ok again");
        }
    }
}
