using HubDr.Engine;

namespace HubDr.Cmdlets.Infrastructure;

/// <summary>
/// PowerShell's rule for which failures stop a cmdlet: a failure about ONE pipeline item (this backup is not there, its
/// signature is bad, its target is not empty, its archive is damaged) is non-terminating — WriteError, and the cmdlet
/// goes on with the next item; a failure that makes every further item pointless (bad parameters or settings, the
/// store unreachable, keys that cannot be loaded or unlocked, a missing tool or database server) is terminating.
/// Classified by ErrorId, here and only here; docs/errors.md lists the scope of every id.
/// </summary>
public static class ErrorScope
{
    /// <summary>ErrorIds that end the whole command.</summary>
    public static IReadOnlySet<string> TerminatingIds { get; } = new HashSet<string>(StringComparer.Ordinal)
    {
        // Parameters and settings.
        "SettingsFileNotFound", "SettingsFileInvalid", "SettingValueInvalid", "DurationInvalid", "RetentionDurationInvalid",
        "RetentionPolicyEmpty", "RetentionPolicyInvalid", "TimeZoneNotFound", "HubNameMissing", "DatabaseNotSpecified", "RestoreTargetMissing",
        "StagingServerMissing", "CompressionUnsupported", "CompressionLevelInvalid", "DatabaseEngineUnsupported",
        "DumpFormatUnsupported", "DatabaseDumpFormatUnsupported", "DatabaseConnectionStringInvalid", "WebhookUrlInvalid",
        "ErrorPatternInvalid", "ServiceCommandInvalid", "CommandLineInvalid", "SmokeSuiteNotFound", "SmokeSuiteUnreadable",
        "SmokeSuiteDefaultMissing", "SmokeSuiteInvalid", "SmokeBaseUrlInvalid", "SmokeStepTimeoutInvalid", "KeyAlgorithmUnsupported",
        "KeyUserIdMissing", "PassphraseEmpty", "KeyPassphraseEmpty", "PassphraseMissing", "StoreLockModeInvalid",
        "StoreEncryptionInvalid", "RetentionPolicyMissing", "RetentionPolicyConflict", "RetentionGracePeriodInvalid",

        // The store.
        "StoreUriMissing", "StoreUriInvalid", "StoreSchemeUnsupported", "StoreNotFound", "StoreUnavailable", "StoreAccessDenied",
        "StoreCredentialsIncomplete", "StoreCredentialsInvalid", "StoreNotInitialized", "StoreMarkerInvalid", "StoreFormatUnsupported",
        "StoreFull", "StoreReadOnly",

        // Keys.
        "KeyFileNotFound", "KeyFileInvalid", "KeyFileUnreadable", "KeyPassphraseInvalid", "TrustedSignerMissing",
        "SecretKeyMissing", "SigningKeyNotFound", "SigningKeyAmbiguous", "SigningKeyUnusable", "SigningKeyRetired", "RecipientKeyMissing",
        "RecipientKeyCannotEncrypt", "EncryptionKeyUnusable", "EncryptionRecipientMissing", "KeyMetadataInvalid", "KeyMetadataUnreadable",

        // Tools and database servers every item would need.
        "DatabaseToolNotFound", "DatabaseToolTooOld", "DatabaseConnectionFailed", "DatabaseAuthenticationFailed",

        // The platform: the Azure Automation cloud sandbox does not allow child processes (docs/platforms.md).
        "ChildProcessUnavailable",
    };

    public static bool IsTerminating(Exception e)
    {
        while (e is AggregateException { InnerExceptions.Count: 1 } agg)
        {
            e = agg.InnerExceptions[0];
        }

        return e is HubDrException h && TerminatingIds.Contains(h.ErrorId);
    }
}
