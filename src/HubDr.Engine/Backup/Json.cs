using System.Text.Json;
using System.Text.Json.Serialization;

namespace HubDr.Engine.Backup;

public static class HubJson
{
    public static readonly JsonSerializerOptions Options = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.CamelCase) },
    };

    /// <summary>Indented UTF-8 JSON with LF line ends on every platform (.NET 8 indents with Environment.NewLine: CRLF on Windows).</summary>
    public static byte[] Serialize<T>(T value) => WithLf(JsonSerializer.SerializeToUtf8Bytes(value, Options));

    /// <summary>
    /// Replaces every CR LF of serialized JSON with LF. Safe for any JSON text: a CR or LF inside a string value is always
    /// escaped (\r, \n), so raw CR LF pairs can only be the writer's indentation line breaks.
    /// </summary>
    public static byte[] WithLf(byte[] json)
    {
        var crlf = json.AsSpan().IndexOf("\r\n"u8);
        if (crlf < 0)
        {
            return json;
        }

        var result = new byte[json.Length];
        var n = 0;
        for (var i = 0; i < json.Length; i++)
        {
            if (json[i] == (byte)'\r' && i + 1 < json.Length && json[i + 1] == (byte)'\n')
            {
                continue;
            }

            result[n++] = json[i];
        }

        return result.AsSpan(0, n).ToArray();
    }

    public static T Deserialize<T>(ReadOnlySpan<byte> json, string what)
    {
        try
        {
            return JsonSerializer.Deserialize<T>(json, Options)
                ?? throw new HubDrException("JsonInvalid", HubErrorCategory.InvalidData, $"{what} is empty.");
        }
        catch (JsonException e)
        {
            throw new HubDrException("JsonInvalid", HubErrorCategory.InvalidData, $"{what} is not valid JSON: {e.Message}", e);
        }
    }
}
