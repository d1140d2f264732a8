#requires -Version 7.4
<#
.SYNOPSIS
    Nightly retention: applies the hub's policy (settings Retention.*, default: the runbook's 14 days / 12 weeks / 12 months).
.EXAMPLE
    pwsh -NoProfile -File ./retention.ps1 -SettingsPath /etc/hubdr/contoso.psd1 -WhatIf
#>
[CmdletBinding(SupportsShouldProcess)]
param([Parameter(Mandatory)][string] $SettingsPath)
$ErrorActionPreference = 'Stop'
Import-Module HubDr
$decisions = Remove-ExpiredHubBackup -SettingsPath $SettingsPath -WhatIf:$WhatIfPreference -Confirm:$false -ErrorAction Continue -ErrorVariable failures
$decisions | Group-Object Action | ForEach-Object { Write-Output "$($_.Name): $($_.Count)" }
exit ([int]($failures.Count -gt 0))
