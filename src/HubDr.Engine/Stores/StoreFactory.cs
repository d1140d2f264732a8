using HubDr.Engine.Stores.Azure;
using HubDr.Engine.Stores.Local;
using HubDr.Engine.Stores.S3;

namespace HubDr.Engine.Stores;

public static class StoreFactory
{
    /// <summary>Opens the store a URI names. One line per backend.</summary>
    public static IBackupStore Create(StoreSpec spec) => Create(spec, null);

    /// <summary>As <see cref="Create(StoreSpec)"/>, with the upload buffers of <paramref name="limits"/> (null: the backend's defaults).</summary>
    public static IBackupStore Create(StoreSpec spec, IO.PipelineLimits? limits)
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
            "s3" => limits is null ? new S3Store(spec) : new S3Store(spec) { PartSize = Math.Max(S3Store.MinPartSize, limits.UploadPartSize), PartsInFlight = limits.UploadPartsInFlight },
            "az" or "https" or "http" => limits is null ? new AzureBlobStore(spec) : new AzureBlobStore(spec) { BlockSize = limits.UploadPartSize, BlocksInFlight = limits.UploadPartsInFlight },
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
