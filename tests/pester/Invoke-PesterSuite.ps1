#requires -Version 7.4
<#
.SYNOPSIS
    Runs the module's Pester tests in this (fresh) process and writes the counts as JSON for build.ps1.
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory)][string] $ResultPath,
    [Parameter(Mandatory)][string] $ModulePath,
    [string[]] $Tag,
    # Only these test files (names like 'Retention' or 'Retention.Tests.ps1', or paths); default: every file here.
    [string[]] $File
)
$ErrorActionPreference = 'Stop'
if (-not $env:HUBDR_PESTER_PATH) { throw 'HUBDR_PESTER_PATH is not set: run the tests through build.ps1 Test.' }
Import-Module $env:HUBDR_PESTER_PATH -Force
$env:HUBDR_MODULE_PATH = $ModulePath

$config = New-PesterConfiguration
$config.Run.Path = if ($File) {
    @($File -split ',' | Where-Object { $_ } | ForEach-Object { if (Test-Path $_) { $_ } else { Join-Path $PSScriptRoot ($_ -replace '(\.Tests)?(\.ps1)?$', '.Tests.ps1') } })
} else { $PSScriptRoot }
$config.Run.PassThru = $true
$config.Output.Verbosity = 'Detailed'
$config.Output.StackTraceVerbosity = 'FirstLine'
$config.TestResult.Enabled = $true
$config.TestResult.OutputFormat = 'JUnitXml'
$config.TestResult.OutputPath = [IO.Path]::ChangeExtension($ResultPath, '.junit.xml')
if ($Tag) { $config.Filter.Tag = @($Tag -split ',') }
$result = Invoke-Pester -Configuration $config

$failed = $result.FailedCount + $result.FailedBlocksCount + $result.FailedContainersCount
[ordered]@{
    Passed  = $result.PassedCount
    Failed  = $failed
    Skipped = $result.SkippedCount + $result.NotRunCount
} | ConvertTo-Json | Set-Content -LiteralPath $ResultPath
