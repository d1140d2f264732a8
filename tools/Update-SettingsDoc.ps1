#requires -Version 7.4
<#
.SYNOPSIS
    Regenerates the key table of docs/settings.md from the typed settings classes (src/HubDr.Cmdlets/Infrastructure/HubSettings.cs).

.DESCRIPTION
    The table between the markers "<!-- settings-table:begin -->" and "<!-- settings-table:end -->" lists every key the
    settings file may hold: its type, the parameters that override it (from the cmdlets' [HubSetting] attributes) and
    its meaning (from the [Setting] attributes). tests/pester/Settings.Tests.ps1 fails when the file differs from
    what this script generates, so a new setting cannot go undocumented.

.EXAMPLE
    ./tools/Update-SettingsDoc.ps1 -ModulePath ./out/HubDr/HubDr.psd1
#>
[CmdletBinding()]
param(
    [string] $ModulePath = (Join-Path $PSScriptRoot '../out/HubDr/HubDr.psd1'),
    [string] $DocPath = (Join-Path $PSScriptRoot '../docs/settings.md'),
    # Return the generated table instead of writing the file.
    [switch] $PassThru
)
$ErrorActionPreference = 'Stop'
if (-not (Get-Module HubDr)) { Import-Module $ModulePath }
$lines = @('| key | type | parameter | meaning |', '|---|---|---|---|')
foreach ($row in [HubDr.Cmdlets.Infrastructure.HubSettings]::Describe()) {
    $params = if ($row.Parameters.Count) { ($row.Parameters | ForEach-Object { "``$_``" }) -join ', ' } else { '' }
    $lines += "| ``$($row.Key)`` | $($row.Type) | $params | $($row.Description -replace '\|', '\|') |"
}
$table = $lines -join "`n"
if ($PassThru) { return $table }
$doc = Get-Content $DocPath -Raw
$pattern = '(?s)(<!-- settings-table:begin -->).*?(<!-- settings-table:end -->)'
if ($doc -notmatch $pattern) { throw "$DocPath has no settings-table markers." }
$doc = [regex]::Replace($doc, $pattern, { param($m) $m.Groups[1].Value + "`n" + $table + "`n" + $m.Groups[2].Value })
Set-Content -LiteralPath $DocPath -Value $doc -NoNewline
Write-Host "Updated the settings table in $DocPath."
