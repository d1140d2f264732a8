@{
    RootModule           = 'HubDr.Cmdlets.dll'
    ModuleVersion        = '0.1.0'
    GUID                 = '7d3f9a52-4c1e-4b8e-9f6a-2d5c8e1b7a90'
    Author               = 'HubDr contributors'
    CompanyName          = 'HubDr'
    Copyright            = '(c) HubDr contributors. MIT License.'
    Description          = 'Backup and disaster recovery for Hub deployments: signed, encrypted (OpenPGP, gpg-compatible) backups of PostgreSQL, MySQL/MariaDB or SQLite plus manifests and configuration, in S3, Azure Blob or a folder; verified restores, weekly restore tests and grandfather-father-son retention.'
    PowerShellVersion    = '7.4'
    CompatiblePSEditions = @('Core')
    FormatsToProcess     = @('HubDr.Format.ps1xml')
    HelpInfoUri          = 'https://github.com/hubdr/HubDr/tree/main/docs/help'
    CmdletsToExport      = @(
        'New-HubBackupKey'
        'New-HubBackup'
        'Get-HubBackup'
        'Test-HubBackupSignature'
        'Restore-HubBackup'
        'Remove-ExpiredHubBackup'
        'Invoke-HubRestoreTest'
        'Initialize-HubBackupStore'
    )
    FunctionsToExport    = @()
    VariablesToExport    = @()
    AliasesToExport      = @()
    PrivateData          = @{
        PSData = @{
            Tags         = @('Backup', 'DisasterRecovery', 'DR', 'PostgreSQL', 'MySQL', 'MariaDB', 'SQLite', 'S3', 'AzureBlob', 'OpenPGP', 'gpg', 'Retention', 'PSEdition_Core', 'Linux', 'Windows', 'MacOS')
            LicenseUri   = 'https://github.com/hubdr/HubDr/blob/main/LICENSE'
            ProjectUri   = 'https://github.com/hubdr/HubDr'
            ReleaseNotes = 'See CHANGELOG.md in the module folder or https://github.com/hubdr/HubDr/blob/main/CHANGELOG.md.'
        }
    }
}
