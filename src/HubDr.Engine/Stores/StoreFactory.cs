using HubDr.Engine.Stores.Azure;
using HubDr.Engine.Stores.Local;
using HubDr.Engine.Stores.S3;

namespace HubDr.Engine.Stores;

public static class StoreFactory
{
    /// <summary>Opens the store a URI names. One line per backend.</summary>
    public static IBackupStore Create(StoreSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var uri = spec.Uri?.Trim() ?? "";
        if (uri.Length == 0)
        {
            throw new HubDrException("StoreUriMissing", HubErrorCategory.InvalidArgument, "No store was given. Pass -Store (a folder, file://, s3:// or az:// URI) or set Store in the settings file.");
        }

        var scheme = SchemeOf(uri);
        return scheme switch
        {
            "file" or "" => new LocalFolderStore(LocalFolderStore.PathFromUri(uri)),
            "s3" => new S3Store(spec),
            "az" or "https" or "http" => new AzureBlobStore(spec),
            _ => throw new HubDrException("StoreSchemeUnsupported", HubErrorCategory.InvalidArgument,
                $"Store URI scheme '{scheme}' is not supported. Use a folder path, file://, s3:// or az://."),
        };
    }

    /// <summary>Lower-case scheme, or "" for a plain path (including Windows drive paths such as C:\x).</summary>
    public static string SchemeOf(string uri)
    {
        var i = uri.IndexOf("://", StringComparison.Ordinal);
        if (i <= 1)
        {
            return "";
        }

        return uri[..i].ToLowerInvariant();
    }
}
