using System.Text.Json.Nodes;
using HubDr.Engine.RestoreTest.Http;
using Xunit;

namespace HubDr.Engine.Tests.RestoreTest;

public sealed class SmokeSuiteTests
{
    [Fact]
    public void Default_IsEmbedded_AndCoversAuthModuleInstallAndTransaction()
    {
        var suite = SmokeSuite.Default;
        Assert.Equal("hub-default", suite.Name);
        Assert.Equal(
            ["health", "login", "install-module", "list-modules", "read-source-account", "sample-transaction", "read-back-account"],
            suite.Steps.Select(s => s.Name));
        Assert.Equal("token", suite.Steps[1].Capture["token"]);
        Assert.Equal(201, suite.Steps.Single(s => s.Name == "sample-transaction").ExpectStatus);
        Assert.DoesNotContain(suite.Variables.Keys, SmokeTemplate.LooksSecret); // no secrets shipped in the suite
        Assert.NotSame(SmokeSuite.Default, SmokeSuite.Default);
    }

    [Fact]
    public void Load_ReadsFile_WithCommentsAndTrailingCommas()
    {
        using var dir = new TempFolder();
        var path = Path.Combine(dir.Path, "suite.json");
        File.WriteAllText(path, """
        // a comment
        { "name": "s", "steps": [ { "name": "a", "path": "/x", "method": "post", }, ], }
        """);
        var suite = SmokeSuite.Load(path);
        Assert.Equal("POST", suite.Steps[0].Method);
        Assert.Equal(200, suite.Steps[0].ExpectStatus);
        Assert.Null(suite.Steps[0].DependsOn);
    }

    [Fact]
    public void Load_MissingFile_Throws_SmokeSuiteNotFound()
    {
        var e = Assert.Throws<HubDrException>(() => SmokeSuite.Load("/nonexistent/dir/suite.json"));
        Assert.Equal("SmokeSuiteNotFound", e.ErrorId);
        Assert.Equal(HubErrorCategory.ObjectNotFound, e.Category);
        Assert.Contains("/nonexistent/dir/suite.json", e.Message);
    }

    [Theory]
    [InlineData("""{ "steps": [ { "name": "a", "path": "/" } ] }""", "has no \"name\"")]
    [InlineData("""{ "name": "s", "steps": [] }""", "has no \"steps\"")]
    [InlineData("""{ "name": "s", "steps": [ { "name": "a", "path": "/" }, { "name": "a", "path": "/" } ] }""", "used twice")]
    [InlineData("""{ "name": "s", "steps": [ { "name": "a", "path": "health" } ] }""", "must start with '/'")]
    [InlineData("""{ "name": "s", "steps": [ { "name": "a", "path": "/", "method": "FETCH" } ] }""", "method 'FETCH'")]
    [InlineData("""{ "name": "s", "steps": [ { "name": "a", "path": "/", "expectStatu": 200 } ] }""", "expectStatu")]
    [InlineData("""{ "name": "s", "steps": [ { "name": "a", "path": "/", "dependsOn": ["b"] }, { "name": "b", "path": "/" } ] }""", "not an earlier step")]
    [InlineData("""{ "name": "s", "steps": [ { "name": "a", "path": "/", "expectJson": { "items[x]": 1 } } ] }""", "expectJson path 'items[x]' is invalid")]
    [InlineData("""{ "name": "s", "steps": [ { "name": "a", "path": "/", "capture": { "t": "items[*].id" } } ] }""", "must not contain [*]")]
    [InlineData("""{ "name": "s", "steps": [ { "name": "a", "path": "/", "capture": { "1bad": "id" } } ] }""", "capture variable name '1bad'")]
    [InlineData("""{ "name": "s", "steps": [ { "name": "a", "path": "/", "expectStatus": 42 } ] }""", "not an HTTP status code")]
    [InlineData("""{ "name": "s", "steps": [ """, "not valid suite JSON")]
    public void Parse_Invalid_Throws_SmokeSuiteInvalid_NamingTheProblem(string json, string expected)
    {
        var e = Assert.Throws<HubDrException>(() => SmokeSuite.Parse(json, "test.json"));
        Assert.Equal("SmokeSuiteInvalid", e.ErrorId);
        Assert.Equal(HubErrorCategory.InvalidData, e.Category);
        Assert.Contains(expected, e.Message);
        Assert.Contains("test.json", e.Message);
    }

    [Theory]
    [InlineData("status", "[\"ok\"]")]
    [InlineData("items[0].name", "[\"core\"]")]
    [InlineData("items[*].name", "[\"core\",\"billing\"]")]
    [InlineData("/items/1/name", "[\"billing\"]")]
    [InlineData("$.items[1][\"name\"]", "[\"billing\"]")]
    [InlineData("items[5].name", "[]")]
    [InlineData("missing", "[]")]
    [InlineData("nothing", "[null]")]
    [InlineData("from.balanceCents", "[99]")]
    [InlineData("/a~1b", "[1]")]
    public void JsonPath_Selects(string path, string expected)
    {
        var doc = JsonNode.Parse("""{"status":"ok","nothing":null,"a/b":1,"from":{"balanceCents":99},"items":[{"name":"core"},{"name":"billing"}]}""");
        var selected = JsonPathLite.Parse(path).Select(doc);
        Assert.Equal(expected, new JsonArray(selected.Select(n => n?.DeepClone()).ToArray()).ToJsonString());
    }

    [Fact]
    public void JsonPath_RootArray_AndRoot()
    {
        var doc = JsonNode.Parse("""[{"id":7}]""");
        Assert.Equal("7", JsonPathLite.Parse("[0].id").Select(doc).Single()!.ToJsonString());
        Assert.Same(doc, JsonPathLite.Parse("$").Select(doc).Single());
    }

    [Fact]
    public void Template_ResolvesDefaults_Arithmetic_Literals_AndTypedBodyValues()
    {
        var t = new SmokeTemplate(
            new Dictionary<string, string> { ["module"] = "smoke-${runId}", ["amount"] = "100", ["user"] = "default" },
            new Dictionary<string, string> { ["user"] = "alice", ["literal"] = "${not-expanded}" });
        Assert.Matches("^smoke-[0-9a-f]{12}$", t.Resolve("${module}"));
        Assert.Equal("alice", t.Resolve("${user}"));                    // caller overrides suite default
        Assert.Equal("${not-expanded}", t.Resolve("${literal}"));       // caller values are literal
        Assert.Equal("literal ${x}", t.Resolve("literal $${x}"));
        t.Capture("before", "1000", "step", secret: false);
        Assert.Equal("900", t.Resolve("${before-amount}"));
        Assert.Equal("1001", t.Resolve("${before+1}"));

        var body = t.Resolve(JsonNode.Parse("""{"a":"${amount:number}","b":"${amount}","c":["${user}"],"d":5}"""));
        Assert.Equal("""{"a":100,"b":"100","c":["alice"],"d":5}""", body!.ToJsonString());

        Assert.Equal("nope", Assert.Throws<MissingVariableException>(() => t.Resolve("/x/${nope}")).Name);
        Assert.Throws<TemplateException>(() => t.Resolve(JsonNode.Parse("""{"a":"${user:number}"}""")));
        Assert.Throws<TemplateException>(() => t.Resolve("${user*2}"));
        Assert.Throws<TemplateException>(() => t.Resolve("${user-1}"));
    }

    [Fact]
    public void Template_MasksSecretNamedVariables_AndSecretCaptures()
    {
        var t = new SmokeTemplate(new Dictionary<string, string>(),
            new Dictionary<string, string> { ["password"] = "hunter2-pass", ["dbPwd"] = "p\"q/uote", ["username"] = "alice" });
        t.Capture("sid", "tok-123456", "login", secret: true);
        t.Capture("apiToken", "abc-token-value", "login", secret: false);
        var masked = t.MaskSecrets("u=alice p=hunter2-pass q={\"x\":\"p\\\"q/uote\"} s=tok-123456 a=abc-token-value");
        Assert.Equal("u=alice p=*** q={\"x\":\"***\"} s=*** a=***", masked);
    }

    [Theory]
    [InlineData("5", "5", true)]
    [InlineData("\"5\"", "5", true)]
    [InlineData("1.0", "1", true)]
    [InlineData("\"x\"", "\"x\"", true)]
    [InlineData("\"x\"", "\"X\"", false)]
    [InlineData("\"true\"", "true", true)]
    [InlineData("false", "false", true)]
    [InlineData("null", "null", true)]
    [InlineData("null", "0", false)]
    [InlineData("{\"a\":[1,2]}", "{\"a\":[1,2.0]}", true)]
    [InlineData("{\"a\":[1,2]}", "{\"a\":[1,2],\"b\":1}", false)]
    [InlineData("[1]", "1", false)]
    public void JsonMatches_ComparesByValue(string expected, string actual, bool match) =>
        Assert.Equal(match, HttpSmokeRunner.JsonMatches(JsonNode.Parse(expected), JsonNode.Parse(actual)));
}
