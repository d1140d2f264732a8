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

    public static byte[] Serialize<T>(T value) => JsonSerializer.SerializeToUtf8Bytes(value, Options);

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
