using System.Text;
using HubDr.Engine.Backup;
using HubDr.Engine.Sources;
using Xunit;

namespace HubDr.Engine.Tests.Sources;

/// <summary>What the redactor catches by name (every case style) and by value, and what it leaves alone.</summary>
public sealed class RedactorTests
{
    private const string Secret = "Zq8#mV2!rT9w";

    [Theory]
    // the names from issue 12 (environment, -EnvironmentPrefix HUB_)
    [InlineData("HUB_SMTP_PASS")]
    [InlineData("HUB_DB_PASS")]
    [InlineData("HUB_JWT_KEY")]
    [InlineData("HUB_STRIPE_KEY")]
    [InlineData("HUB_LICENSE_KEY")]
    [InlineData("HUB_AUTH")]
    // config JSON keys from issue 12
    [InlineData("pass")]
    [InlineData("jwtKey")]
    [InlineData("stripe_key")]
    // every word, every case style
    [InlineData("db-password")]
    [InlineData("dbPwd")]
    [InlineData("DB_PW")]
    [InlineData("ClientSecret")]
    [InlineData("refresh.token")]
    [InlineData("API_KEY")]
    [InlineData("apiKey")]
    [InlineData("ApiKey")]
    [InlineData("JWTKey")]
    [InlineData("x-auth")]
    [InlineData("Authorization")]
    [InlineData("gcpCredentials")]
    [InlineData("AWS_CREDS")]
    [InlineData("PRIVATE_PEM")]
    [InlineData("privateKey")]
    [InlineData("password_salt")]
    [InlineData("SENTRY_DSN")]
    [InlineData("sentryDsn")]
    [InlineData("session-cookie")]
    [InlineData("AZURE_SAS")]
    [InlineData("ConnectionString")]
    [InlineData("hmac_key")]
    [InlineData("webhookSignature")]
    [InlineData("Passphrase")]
    public void SecretNamesAreRecognisedInEveryCaseStyle(string name)
    {
        var r = new Redactor();
        Assert.True(r.IsSecretName(name), name);
        var env = r.RedactEnvironment(new Dictionary<string, string> { [name] = Secret });
        Assert.Equal(Redactor.Mask, env[name]);
        var json = Encoding.UTF8.GetString(r.RedactFile("app.json", Encoding.UTF8.GetBytes($"{{\"a\":{{\"{name}\":\"{Secret}\"}}}}")));
        Assert.DoesNotContain(Secret, json, StringComparison.Ordinal);
        var text = r.RedactText($"{name}={Secret}\nexport {name}=\"{Secret}\"\n{name}: {Secret}\n");
        Assert.DoesNotContain(Secret, text, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("HUB_REGION")]
    [InlineData("PASSENGER_COUNT")]
    [InlineData("keyboardLayout")]
    [InlineData("AUTHOR")]
    [InlineData("SORT_KEY_ID")]
    [InlineData("KEY_FILE")]
    [InlineData("authUrl")]
    [InlineData("PUBLIC_KEY")]
    [InlineData("monkey")]
    [InlineData("display_name")]
    public void OrdinaryNamesAreNotSecret(string name) => Assert.False(new Redactor().IsSecretName(name), name);

    [Fact]
    public void OperatorsAddNamesAndExemptNames()
    {
        var r = new Redactor(["HUB_CUSTOM_*"], ["HUB_SORT_KEY", "*_PUBLIC_TOKEN"]);
        Assert.True(r.IsSecretName("HUB_CUSTOM_THING"));
        Assert.False(r.IsSecretName("HUB_SORT_KEY"));
        Assert.False(r.IsSecretName("hub_sort_key"));
        Assert.False(r.IsSecretName("MAPS_PUBLIC_TOKEN"));
        Assert.True(r.IsSecretName("HUB_SORT_KEYS"));
        // An exempt name still has secret-looking VALUES redacted.
        var env = r.RedactEnvironment(new Dictionary<string, string> { ["HUB_SORT_KEY"] = "name", ["MAPS_PUBLIC_TOKEN"] = "https://u:" + Secret + "@maps" });
        Assert.Equal("name", env["HUB_SORT_KEY"]);
        Assert.DoesNotContain(Secret, env["MAPS_PUBLIC_TOKEN"], StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abcDEF123_-x", "Bearer ")]
    [InlineData("Authorization: Basic dXNlcjpwYXNzd29yZA==", "Authorization: Basic ")]
    [InlineData("token ghp_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghij", "token ")]
    [InlineData("postgres://hub:S3cretPw@db1:5432/hub", "postgres://hub:")]
    [InlineData("redis://:S3cretPw@cache:6379", "redis://:")]
    [InlineData("jwt=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.sig-nature_value", "jwt=")]
    [InlineData("stripe sk_live_51HabcdefGHIJKLMNOP", "stripe ")]
    [InlineData("slack xoxb-1234567890-abcdefghij", "slack ")]
    [InlineData("Host=db;Username=hub;Password=S3cretPw;", "Host=db;Username=hub;Password=")]
    public void SecretLookingValuesAreRedactedUnderAnyName(string value, string kept)
    {
        var r = new Redactor();
        var env = r.RedactEnvironment(new Dictionary<string, string> { ["HUB_SETTING"] = value });
        Assert.StartsWith(kept, env["HUB_SETTING"], StringComparison.Ordinal);
        Assert.Contains(Redactor.Mask, env["HUB_SETTING"], StringComparison.Ordinal);
        Assert.DoesNotContain("S3cretPw", env["HUB_SETTING"], StringComparison.Ordinal);
        Assert.Contains("env:HUB_SETTING", r.RedactedNames);
    }

    [Fact]
    public void PemBlocksOfEveryKindAreRedacted()
    {
        foreach (var kind in new[] { "RSA PRIVATE KEY", "PRIVATE KEY", "OPENSSH PRIVATE KEY", "ENCRYPTED PRIVATE KEY", "PGP PRIVATE KEY BLOCK" })
        {
            var value = $"-----BEGIN {kind}-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END {kind}-----";
            var env = new Redactor().RedactEnvironment(new Dictionary<string, string> { ["HUB_CERT_BUNDLE"] = value });
            Assert.Equal(Redactor.Mask, env["HUB_CERT_BUNDLE"]);
        }
    }

    [Fact]
    public void LongHighEntropyValuesUnderHintingNamesAreRedactedOrdinaryValuesKept()
    {
        var r = new Redactor();
        var env = r.RedactEnvironment(new Dictionary<string, string>
        {
            ["HUB_WEBHOOK_ID"] = "k3J9vQ2xL8mN4pR7tW1yZ5aB6cD0eF",   // a hinting word, high entropy: redacted
            ["HUB_WEBHOOK_URL"] = "https://hooks.example.test/path", // a URL without a password: kept
            ["HUB_REGION"] = "k3J9vQ2xL8mN4pR7tW1yZ5aB6cD0eF",       // no hinting word: kept
            ["HUB_SESSION_MODE"] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaa",    // low entropy: kept
        });
        Assert.Equal(Redactor.Mask, env["HUB_WEBHOOK_ID"]);
        Assert.Equal("https://hooks.example.test/path", env["HUB_WEBHOOK_URL"]);
        Assert.Equal("k3J9vQ2xL8mN4pR7tW1yZ5aB6cD0eF", env["HUB_REGION"]);
        Assert.Equal("aaaaaaaaaaaaaaaaaaaaaaaaaaaa", env["HUB_SESSION_MODE"]);
    }

    [Fact]
    public void RedactedLinesKeepTheirLineEndings()
    {
        var r = new Redactor();
        var text = "HOST=db1\r\nDB_PASS=" + Secret + "\r\nURL=postgres://u:" + Secret + "@h/d\r\nPORT=5432\nTOKEN=x" + Secret + "\n";
        var result = r.RedactText(text);
        Assert.Equal("HOST=db1\r\nDB_PASS=" + Redactor.Mask + "\r\nURL=postgres://u:" + Redactor.Mask + "@h/d\r\nPORT=5432\nTOKEN=" + Redactor.Mask + "\n", result);
        var file = Encoding.UTF8.GetString(r.RedactFile("app.env", Encoding.UTF8.GetBytes(text)));
        Assert.Equal(result, file);
    }

    [Fact]
    public void JsonIsWrittenWithLfOnly()
    {
        // What .NET 8's indented writer produces on Windows: CRLF between tokens; CR/LF inside strings are escaped.
        var windows = Encoding.UTF8.GetBytes("{\r\n  \"a\": \"line1\\r\\nline2\",\r\n  \"b\": [\r\n    1\r\n  ]\r\n}");
        Assert.Equal("{\n  \"a\": \"line1\\r\\nline2\",\n  \"b\": [\n    1\n  ]\n}", Encoding.UTF8.GetString(HubJson.WithLf(windows)));
        Assert.DoesNotContain((byte)'\r', HubJson.Serialize(new { A = "x\r\ny", B = new[] { 1, 2 } }));
        var redacted = new Redactor().RedactFile("c.json", Encoding.UTF8.GetBytes("{\r\n\"pass\": \"x\",\r\n\"n\": 1\r\n}"));
        Assert.DoesNotContain((byte)'\r', redacted);
    }
}
