#requires -Version 7.4
<#
.SYNOPSIS
    Builds, tests, demonstrates and packages HubDr.

.DESCRIPTION
    Tasks:
      Build    - compile the solution (warnings are errors) and lay out the module in out/HubDr
                 (HubDr.Cmdlets.dll beside the manifest; the engine and its NuGet dependencies in dependencies/).
      Test     - Build, restore the pinned test tools from NuGet (Pester, an old BouncyCastle for the isolation test),
                 start throwaway PostgreSQL/MariaDB servers and S3/Azure emulators on loopback, run the engine tests
                 (xunit) and the module tests (Pester), stop everything, print "N passed, N failed, N skipped".
      Demo     - Build, then the whole flow on the embedded default (SQLite + a local folder store).
      Package  - Build, then out/HubDr.<version>.nupkg (what PSGallery serves: Install-PSResource / Save-PSResource
                 from a local file repository), out/HubDr-<version>.zip (Import-Module: a HubDr/ folder) and
                 out/HubDr.zip (Azure Automation: the HubDr/ module folder at the zip root).
      Bench    - the benchmark harness in bench/ (see docs/performance.md).
      Lint     - PSScriptAnalyzer-free static check of the repo's PowerShell (parser errors, unapproved verbs, aliases).

.EXAMPLE
    dotnet tool restore && dotnet pwsh ./build.ps1 Demo

.EXAMPLE
    dotnet tool restore && dotnet pwsh ./build.ps1 Test
#>
[CmdletBinding()]
param(
    [Parameter(Position = 0)]
    [ValidateSet('Build', 'Test', 'Demo', 'Package', 'Bench', 'Lint')]
    [string[]] $Task = 'Build',

    [string] $Configuration = 'Release',

    # Test: which suites to run.
    [ValidateSet('engine', 'pester')]
    [string[]] $Suite = @('engine', 'pester'),

    # Test: skip starting database servers / storage emulators (their tests then fail, loudly).
    [switch] $NoServices,

    # Test: extra filter for the engine tests (dotnet test --filter), and Pester tags.
    [string] $EngineFilter,
    [string[]] $PesterTag,
    # Test: only these Pester files (e.g. -PesterFile Retention, BadInput).
    [string[]] $PesterFile,

    # Bench: size of the generated PostgreSQL database in MB.
    [int] $BenchSizeMB = 1536
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 3.0
$Root = $PSScriptRoot
$Out = Join-Path $Root 'out'
$ModuleOut = Join-Path $Out 'HubDr'
$BuildDir = Join-Path $Root 'build'
$ResultsDir = Join-Path $BuildDir 'test-results'
$env:DOTNET_CLI_TELEMETRY_OPTOUT = '1'
# The platforms PowerShell 7.4 runs on (its release packages): native libraries for any other RID are not shipped.
# 'win' and 'unix' hold RID-generic managed assemblies (e.g. ProtectedData on Windows).
$SupportedRuntimes = @('win', 'unix', 'win-x64', 'win-x86', 'win-arm64', 'linux-x64', 'linux-arm64', 'linux-arm', 'linux-musl-x64', 'linux-musl-arm64', 'osx', 'osx-x64', 'osx-arm64')
$env:DOTNET_NOLOGO = '1'

function Invoke-Native {
    param([Parameter(Mandatory)][string] $What, [Parameter(Mandatory)][scriptblock] $Command)
    & $Command
    if ($LASTEXITCODE -ne 0) { throw "$What failed (exit code $LASTEXITCODE)." }
}

function Get-PwshCommand {
    # Under 'dotnet pwsh' the process is dotnet running pwsh.dll; elsewhere it is pwsh itself.
    $exe = [Environment]::ProcessPath
    if ([IO.Path]::GetFileNameWithoutExtension($exe) -eq 'dotnet') { return @($exe, (Join-Path $PSHOME 'pwsh.dll')) }
    return @($exe)
}

function Install-Prerequisite {
    <#
        Installs the one declared package list (tools/prerequisites.psd1) for the given groups, EVERY time: apt-get
        install and npm ci are idempotent, so what a machine happens to have never changes what runs. Default
        services of the installed servers are kept from starting (policy-rc.d for the duration of the install); the
        tests start their own throwaway servers.
    #>
    param([Parameter(Mandatory)][string[]] $Group, [switch] $Npm)
    $list = Import-PowerShellDataFile (Join-Path $Root 'tools/prerequisites.psd1')
    [string[]] $packages = @($Group | ForEach-Object { $list.Apt[$_] }) | Select-Object -Unique
    if ($IsWindows -or -not (Get-Command apt-get -ErrorAction SilentlyContinue)) {
        Write-Warning ("This machine has no apt-get, so nothing is installed. HubDr's tests drive these tools for real; install them first:`n  " +
            ($list.WindowsHints -join "`n  ") + "`n(Debian package names, for reference: $($packages -join ' '))")
    }
    else {
        Write-Host "== Installing the declared packages (apt): $($packages -join ' ')" -ForegroundColor Cyan
        $asRoot = (& id -u) -eq '0'
        if (-not $asRoot -and -not (Get-Command sudo -ErrorAction SilentlyContinue)) {
            throw "Not root and no sudo: run 'apt-get install $($packages -join ' ')' as root, then run again."
        }
        function Invoke-Root([string] $What, [string[]] $Command) {
            # apt's own chatter is kept out of the test log unless the step fails.
            $output = if ($asRoot) { & $Command[0] @($Command | Select-Object -Skip 1) 2>&1 } else { & sudo -n @Command 2>&1 }
            if ($LASTEXITCODE -ne 0) {
                $output | Select-Object -Last 40 | ForEach-Object { Write-Host "  $_" }
                throw "$What failed (exit code $LASTEXITCODE)."
            }
        }
        $env:DEBIAN_FRONTEND = 'noninteractive'
        # Keep apt from starting the machine's default postgresql/mariadb services while installing.
        $policy = '/usr/sbin/policy-rc.d'
        $ownPolicy = -not (Test-Path $policy)
        if ($ownPolicy) { Invoke-Root 'write policy-rc.d' @('sh', '-c', "printf '#!/bin/sh\nexit 101\n' > $policy && chmod 755 $policy") }
        try {
            # Another apt run (a parallel build, unattended-upgrades) may hold the locks: wait for it, do not fail.
            $lock = @('-o', 'DPkg::Lock::Timeout=600')
            for ($try = 1; ; $try++) {
                try { Invoke-Root 'apt-get update' (@('apt-get') + $lock + @('update', '-qq')); break }
                catch { if ($try -ge 20) { throw }; Start-Sleep -Seconds 15 }
            }
            Invoke-Root 'apt-get install' (@('apt-get') + $lock + @('install', '-y', '-qq', '--no-install-recommends') + $packages)
        }
        finally {
            if ($ownPolicy) { Invoke-Root 'remove policy-rc.d' @('rm', '-f', $policy) }
        }
    }
    if ($Npm) {
        foreach ($dir in $list.Npm) {
            Write-Host "== Installing npm packages in $dir (npm ci, from its lockfile)" -ForegroundColor Cyan
            Push-Location (Join-Path $Root $dir)
            try { Invoke-Native 'npm ci' { npm ci --no-audit --no-fund --loglevel=error } }
            finally { Pop-Location }
        }
    }
}

function Invoke-Build {
    Write-Host '== Build' -ForegroundColor Cyan
    Invoke-Native 'dotnet build' { dotnet build (Join-Path $Root 'HubDr.sln') -c $Configuration --nologo -v:q -clp:ErrorsOnly }
    if (Test-Path $ModuleOut) { Remove-Item $ModuleOut -Recurse -Force }
    $null = New-Item -ItemType Directory -Path $ModuleOut -Force
    Invoke-Native 'publish engine' {
        dotnet publish (Join-Path $Root 'src/HubDr.Engine/HubDr.Engine.csproj') -c $Configuration --no-build --nologo -v:q -o (Join-Path $ModuleOut 'dependencies')
    }
    foreach ($rid in Get-ChildItem (Join-Path $ModuleOut 'dependencies/runtimes') -Directory -ErrorAction SilentlyContinue) {
        if ($rid.Name -notin $SupportedRuntimes) { Remove-Item $rid.FullName -Recurse -Force }
    }
    $cmdletBin = Join-Path $Root "src/HubDr.Cmdlets/bin/$Configuration/net8.0"
    Copy-Item (Join-Path $cmdletBin 'HubDr.Cmdlets.dll'), (Join-Path $cmdletBin 'HubDr.Cmdlets.pdb') $ModuleOut
    Copy-Item (Join-Path $Root 'module/*') $ModuleOut -Recurse
    Copy-Item (Join-Path $Root 'LICENSE'), (Join-Path $Root 'CHANGELOG.md') $ModuleOut
    $help = Join-Path $Root 'docs/help'
    if (Test-Path (Join-Path $Root 'tools/New-MamlHelp.ps1')) {
        & (Join-Path $Root 'tools/New-MamlHelp.ps1') -MarkdownPath $help -OutputPath (Join-Path $ModuleOut 'en-US')
    }
    $null = Test-ModuleManifest (Join-Path $ModuleOut 'HubDr.psd1')
    Write-Host "Module laid out in $ModuleOut"
}

function Restore-TestTool {
    $packages = Join-Path $BuildDir 'packages'
    Invoke-Native 'restore test tools' { dotnet restore (Join-Path $Root 'tests/tools/Tools.csproj') --packages $packages --nologo -v:q }
    $env:HUBDR_PESTER_PATH = Join-Path $packages 'pester/5.7.1/tools/Pester.psd1'
    $env:HUBDR_OLD_BC_PATH = Join-Path $packages 'bouncycastle.cryptography/2.4.0/lib/net6.0/BouncyCastle.Cryptography.dll'
    foreach ($p in $env:HUBDR_PESTER_PATH, $env:HUBDR_OLD_BC_PATH) { if (-not (Test-Path $p)) { throw "Test tool missing after restore: $p" } }
}

function Import-EnvFile([string] $Path) {
    foreach ($line in Get-Content $Path) {
        if ($line -match '^\s*([A-Za-z_][A-Za-z0-9_]*)=(.*)$') {
            $name = $Matches[1]
            $value = $Matches[2]
            if ($value -match "^'(.*)'$" -or $value -match '^"(.*)"$') { $value = $Matches[1] }
            [Environment]::SetEnvironmentVariable($name, $value)
        }
    }
}

# Services: each is a script with 'start <dir>' / 'stop <dir>' that writes <dir>/*.env.
function Get-ServiceScript {
    @(
        @{ Name = 'database servers'; Script = Join-Path $Root 'tests/servers/servers.sh'; Dir = Join-Path $BuildDir 'servers'; Env = 'servers.env' }
        @{ Name = 'storage emulators'; Script = Join-Path $Root 'tests/emulators/emulators.sh'; Dir = Join-Path $BuildDir 'emulators'; Env = 'emulators.env' }
    ) | Where-Object { Test-Path $_.Script }
}

function Start-TestService {
    foreach ($s in Get-ServiceScript) {
        Write-Host "== Starting $($s.Name)" -ForegroundColor Cyan
        & bash $s.Script stop $s.Dir *> $null
        & bash $s.Script start $s.Dir
        if ($LASTEXITCODE -ne 0) { throw "Starting $($s.Name) failed (exit code $LASTEXITCODE)." }
        Import-EnvFile (Join-Path $s.Dir $s.Env)
    }
}

function Stop-TestService {
    foreach ($s in Get-ServiceScript) {
        Write-Host "== Stopping $($s.Name)" -ForegroundColor Cyan
        & bash $s.Script stop $s.Dir
    }
}

function Invoke-EngineTest {
    Write-Host '== Engine tests (xunit)' -ForegroundColor Cyan
    $trx = Join-Path $ResultsDir 'engine.trx'
    if (Test-Path $trx) { Remove-Item $trx }
    $testArgs = @('test', (Join-Path $Root 'tests/HubDr.Engine.Tests/HubDr.Engine.Tests.csproj'), '-c', $Configuration, '--no-build', '--nologo',
        '--logger', 'trx;LogFileName=engine.trx', '--logger', 'console;verbosity=normal', '--results-directory', $ResultsDir)
    if ($EngineFilter) { $testArgs += @('--filter', $EngineFilter) }
    & dotnet @testArgs | Out-Host
    $exit = $LASTEXITCODE
    if (-not (Test-Path $trx)) { return @{ Passed = 0; Failed = 1; Skipped = 0; Note = "engine tests produced no results (exit $exit)" } }
    $c = ([xml](Get-Content $trx -Raw)).TestRun.ResultSummary.Counters
    $failed = [int]$c.failed + [int]$c.error + [int]$c.timeout + [int]$c.aborted
    if ($exit -ne 0 -and $failed -eq 0) { $failed = 1 }
    return @{ Passed = [int]$c.passed; Failed = $failed; Skipped = [int]$c.notExecuted + [int]$c.inconclusive }
}

function Invoke-PesterTest {
    Write-Host '== Module tests (Pester)' -ForegroundColor Cyan
    $json = Join-Path $ResultsDir 'pester.json'
    if (Test-Path $json) { Remove-Item $json }
    $pwsh = Get-PwshCommand
    $runner = Join-Path $Root 'tests/pester/Invoke-PesterSuite.ps1'
    $tagArgs = if ($PesterTag) { @('-Tag', ($PesterTag -join ',')) } else { @() }
    if ($PesterFile) { $tagArgs += @('-File', ($PesterFile -join ',')) }
    & $pwsh[0] @($pwsh | Select-Object -Skip 1) -NoProfile -NonInteractive -File $runner -ResultPath $json -ModulePath (Join-Path $ModuleOut 'HubDr.psd1') @tagArgs | Out-Host
    if (-not (Test-Path $json)) { return @{ Passed = 0; Failed = 1; Skipped = 0; Note = 'Pester produced no results' } }
    $r = Get-Content $json -Raw | ConvertFrom-Json
    return @{ Passed = [int]$r.Passed; Failed = [int]$r.Failed; Skipped = [int]$r.Skipped }
}

function Invoke-Test {
    # One locale for every tool the tests drive (tar, gpg, psql print non-ASCII names differently without it; cron and
    # fresh machines often have no LANG at all).
    $env:LANG = 'C.UTF-8'
    $env:LC_ALL = 'C.UTF-8'
    Install-Prerequisite -Group Demo, Test -Npm
    Invoke-Build
    New-ModulePackage
    Restore-TestTool
    # The reference Hub web service the restore tests start against restored databases.
    Invoke-Native 'build tests/hubservice' { dotnet build (Join-Path $Root 'tests/hubservice/HubService.csproj') -c $Configuration --nologo -v:q -clp:ErrorsOnly }
    $env:HUBDR_HUBSERVICE_DLL = Join-Path $Root "tests/hubservice/bin/$Configuration/net10.0/HubService.dll"
    $null = New-Item -ItemType Directory -Path $ResultsDir -Force
    $totals = @{ Passed = 0; Failed = 0; Skipped = 0 }
    $notes = @()
    try {
        if (-not $NoServices) { Start-TestService }
        if ('engine' -in $Suite) { $r = Invoke-EngineTest; $totals.Passed += $r.Passed; $totals.Failed += $r.Failed; $totals.Skipped += $r.Skipped; if ($r['Note']) { $notes += $r.Note } }
        if ('pester' -in $Suite) { $r = Invoke-PesterTest; $totals.Passed += $r.Passed; $totals.Failed += $r.Failed; $totals.Skipped += $r.Skipped; if ($r['Note']) { $notes += $r.Note } }
    }
    catch {
        $notes += "test run aborted: $($_.Exception.Message)"
        $totals.Failed += 1
    }
    finally {
        if (-not $NoServices) { try { Stop-TestService } catch { Write-Warning "Stopping services: $($_.Exception.Message)" } }
    }
    foreach ($n in $notes) { Write-Host "NOTE: $n" -ForegroundColor Yellow }
    Write-Host ''
    Write-Host "$($totals.Passed) passed, $($totals.Failed) failed, $($totals.Skipped) skipped"
    if ($totals.Failed -gt 0) { exit 1 }
}

function Invoke-Demo {
    Install-Prerequisite -Group Demo
    Invoke-Build
    $pwsh = Get-PwshCommand
    & $pwsh[0] @($pwsh | Select-Object -Skip 1) -NoProfile -NonInteractive -File (Join-Path $Root 'examples/demo.ps1') -ModulePath (Join-Path $ModuleOut 'HubDr.psd1') -WorkPath (Join-Path $Out 'demo')
    if ($LASTEXITCODE -ne 0) { throw "Demo failed (exit code $LASTEXITCODE)." }
}

function Invoke-Package {
    Invoke-Build
    New-ModulePackage
}

function New-ModulePackage {
    $version = (Import-PowerShellDataFile (Join-Path $ModuleOut 'HubDr.psd1')).ModuleVersion
    $zip = Join-Path $Out "HubDr-$version.zip"
    $aa = Join-Path $Out 'HubDr.zip'
    $nupkg = Join-Path $Out "HubDr.$version.nupkg"
    Remove-Item $zip, $aa, $nupkg -ErrorAction SilentlyContinue
    # Import-Module layout: a HubDr/ folder inside the zip (extract into a PSModulePath folder).
    Compress-Archive -Path $ModuleOut -DestinationPath $zip
    # Azure Automation: the zip is named after the module and holds the module FOLDER HubDr/ at its root.
    Compress-Archive -Path $ModuleOut -DestinationPath $aa
    # PSGallery: the .nupkg that Publish-PSResource would upload; Install-PSResource / Save-PSResource install it from
    # any repository, including a local folder (Register-PSResourceRepository -Uri <folder>).
    Import-Module Microsoft.PowerShell.PSResourceGet -ErrorAction Stop
    if (Get-Command Compress-PSResource -ErrorAction SilentlyContinue) {
        Compress-PSResource -Path $ModuleOut -DestinationPath $Out
    }
    else {
        # PSResourceGet 1.0 (pwsh 7.4): publish into a throwaway local repository instead.
        $repo = Join-Path $Out 'psresource-repo'
        $null = New-Item -ItemType Directory -Path $repo -Force
        $name = 'HubDrBuild' + [guid]::NewGuid().ToString('N').Substring(0, 8)
        Register-PSResourceRepository -Name $name -Uri $repo -Trusted
        try { Publish-PSResource -Path $ModuleOut -Repository $name; Move-Item (Join-Path $repo "HubDr.$version.nupkg") $nupkg -Force }
        finally { Unregister-PSResourceRepository -Name $name; Remove-Item $repo -Recurse -Force -ErrorAction SilentlyContinue }
    }
    if (-not (Test-Path $nupkg)) { throw "The module package $nupkg was not produced." }
    Write-Host "Packages: $nupkg, $zip, $aa"
    $env:HUBDR_PACKAGE_ZIP = $zip
    $env:HUBDR_AUTOMATION_ZIP = $aa
    $env:HUBDR_PACKAGE_NUPKG = $nupkg
}

function Invoke-Bench {
    Install-Prerequisite -Group Demo, Test, Bench -Npm
    Invoke-Build
    $pwsh = Get-PwshCommand
    & $pwsh[0] @($pwsh | Select-Object -Skip 1) -NoProfile -NonInteractive -File (Join-Path $Root 'bench/Invoke-Benchmark.ps1') -ModulePath (Join-Path $ModuleOut 'HubDr.psd1') -SizeMB $BenchSizeMB
    if ($LASTEXITCODE -ne 0) { throw "Benchmark failed (exit code $LASTEXITCODE)." }
}

function Invoke-Lint {
    & (Join-Path $Root 'tools/Test-ScriptQuality.ps1') -Path $Root
    if ($LASTEXITCODE -ne 0) { exit 1 }
}

foreach ($t in $Task) {
    switch ($t) {
        'Build' { Invoke-Build }
        'Test' { Invoke-Test }
        'Demo' { Invoke-Demo }
        'Package' { Invoke-Package }
        'Bench' { Invoke-Bench }
        'Lint' { Invoke-Lint }
    }
}
