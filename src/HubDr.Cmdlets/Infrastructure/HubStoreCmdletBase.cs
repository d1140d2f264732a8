using System.Management.Automation;
using System.Security;
using HubDr.Engine;
using HubDr.Engine.Stores;

namespace HubDr.Cmdlets.Infrastructure;

/// <summary>Parameters every store-facing cmdlet shares: the settings file and how to reach the store.</summary>
public abstract class HubStoreCmdletBase : HubCmdletBase
{
    private HubSettings? _settings;

    /// <summary>Per-hub settings file (.psd1); defaults to $env:HUBDR_SETTINGS when set.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? SettingsPath { get; set; }

    /// <summary>S3 access key id + secret key, or Azure account name + account key.</summary>
    [Parameter]
    [Credential]
    public PSCredential? StoreCredential { get; set; }

    /// <summary>S3-compatible endpoint URL (MinIO, Ceph, an emulator); AWS when omitted.</summary>
    [Parameter]
    public string? StoreEndpoint { get; set; }

    [Parameter]
    public string? StoreRegion { get; set; }

    /// <summary>Azure SAS token (SecureString).</summary>
    [Parameter]
    public SecureString? StoreSasToken { get; set; }

    /// <summary>Azure storage connection string (SecureString).</summary>
    [Parameter]
    public SecureString? StoreConnectionString { get; set; }

    /// <summary>Azure managed identity (Azure Automation, VMs).</summary>
    [Parameter]
    public SwitchParameter UseManagedIdentity { get; set; }

    protected HubSettings Settings => _settings ??= HubSettings.Load(this, SettingsPath);

    protected StoreSpec BuildStoreSpec(string? storeParameter)
    {
        var uri = storeParameter ?? Settings.GetPath("Store")
            ?? throw new HubDrException("StoreUriMissing", HubErrorCategory.InvalidArgument,
                "No store was given. Pass -Store (a folder, file://, s3:// or az:// URI) or set Store in the settings file.");
        if (StoreFactory.SchemeOf(uri) == "")
        {
            uri = ResolvePath(uri);
        }

        var s3Style = StoreFactory.SchemeOf(uri) == "s3";
        var mi = UseManagedIdentity.IsPresent || (Settings.GetBool("StoreOptions.UseManagedIdentity") ?? false);
        return new StoreSpec
        {
            Uri = uri,
            Endpoint = StoreEndpoint ?? Settings.GetString("StoreOptions.Endpoint"),
            Region = StoreRegion ?? Settings.GetString("StoreOptions.Region"),
            ForcePathStyle = Settings.GetBool("StoreOptions.ForcePathStyle"),
            AccessKeyId = s3Style ? StoreCredential?.UserName : null,
            SecretAccessKey = s3Style ? StoreCredential?.Password : null,
            AccountKey = !s3Style ? StoreCredential?.Password : null,
            SasToken = StoreSasToken,
            ConnectionString = StoreConnectionString,
            UseManagedIdentity = mi,
            ManagedIdentityClientId = Settings.GetString("StoreOptions.ManagedIdentityClientId"),
            ServerSideEncryption = Settings.GetString("StoreOptions.ServerSideEncryption"),
            KmsKeyId = Settings.GetString("StoreOptions.KmsKeyId"),
            EncryptionScope = Settings.GetString("StoreOptions.EncryptionScope"),
            MaxRetries = Settings.GetInt("StoreOptions.MaxRetries") ?? 5,
        };
    }

    protected string? HubFromSettings(string? hub) => hub ?? Settings.GetString("Hub");

    /// <summary>A passphrase from the parameter, else from the environment variable the settings name (never from the file itself).</summary>
    protected char[] ResolvePassphrase(SecureString? parameter, string what)
    {
        if (parameter is not null)
        {
            return Secrets.ToChars(parameter);
        }

        var env = Settings.GetString("Keys.PassphraseEnvironmentVariable") ?? "HUBDR_KEY_PASSPHRASE";
        var value = Environment.GetEnvironmentVariable(env);
        if (!string.IsNullOrEmpty(value))
        {
            return value.ToCharArray();
        }

        throw new HubDrException("PassphraseMissing", HubErrorCategory.InvalidArgument,
            $"The {what} needs a passphrase: pass -Passphrase (a SecureString, e.g. from Get-Secret or Read-Host -AsSecureString) or set the environment variable {env} for unattended jobs.");
    }
}
