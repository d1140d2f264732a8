# Per-hub HubDr settings (see docs/settings.md). Relative paths resolve against this file's folder.
# No secrets here: passphrases come from the environment variable named below, store and database credentials
# from the standard credential chains or -*Credential parameters.
@{
    Hub          = 'contoso'
    Store        = 's3://hub-backups/prod'
    StoreOptions = @{
        Region               = 'eu-west-1'
        ServerSideEncryption = 'aws:kms'       # in addition to HubDr's own OpenPGP encryption
    }
    Database     = @{
        Engine           = 'postgres'
        ConnectionString = 'Host=db1.internal;Port=5432;Database=hub;Username=hub_backup'
        DumpFormat       = 'custom'
    }
    Keys         = @{
        Recipients                    = @('keys/ops.pub.asc', 'keys/escrow.pub.asc')
        SigningKey                    = 'keys/ops.sec.asc'
        TrustedSigners                = @('keys/ops.pub.asc')
        SecretKeys                    = @('keys/')          # current and retired keys
        Metadata                      = 'keys/keys.json'
        PassphraseEnvironmentVariable = 'HUBDR_KEY_PASSPHRASE'
    }
    Sources      = @{
        ManifestCommand     = 'hub-cli export-manifests --output {path}'
        ConfigCommand       = 'hub-cli export-config --output {path}'
        EnvironmentPrefixes = @('HUB_')
        SecretNames         = @('HUB_LICENSE_*')
    }
    Compression  = 'zstd'
    RestoreTarget = @{
        Engine           = 'postgres'
        ConnectionString = 'Host=staging-db.internal;Database=hub_restoretest;Username=hub_restore'
        FilesPath        = '/srv/hub-staging/files'
        ImportCommand    = 'hub-cli import-config --input {path}'
    }
    Retention    = @{
        KeepWithinDaily   = '14d'
        KeepWithinWeekly  = '12w'
        KeepWithinMonthly = '12m'
    }
    Rto          = '4h'
    Rpo          = '1h'
}
