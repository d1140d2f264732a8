<#
.SYNOPSIS
    One HubDr operation in its own pwsh process, for bench/Invoke-Benchmark.ps1 (so its peak RSS can be measured).

.DESCRIPTION
    Imports the module, runs one cmdlet (Key, Backup, Restore, Verify) with -Verbose, and writes a JSON result to
    -ResultPath: the cmdlet's own wall time (module import excluded), the import time, the process's peak RSS
    (VmHWM) and every verbose message with the second it arrived (per-stage timing).
    Secrets come from the environment only (never argv): HUBDR_BENCH_KEY_PASSPHRASE, HUBDR_BENCH_DB_USER,
    HUBDR_BENCH_DB_PASSWORD.
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory)] [string] $ModulePath,
    [Parameter(Mandatory)] [ValidateSet('Key', 'Backup', 'Restore', 'Verify')] [string] $Action,
    [Parameter(Mandatory)] [string] $ResultPath,
    [string] $Store,
    [string] $Hub = 'bench',
    [string] $Engine = 'postgres',
    [string] $ConnectionString,
    [string] $PublicKeyPath,
    [string] $SecretKeyPath,
    [string] $KeyOutputPath,
    [string] $Algorithm = 'EcdsaP256',
    [string] $BackupId,
    [string] $Compression
)
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 3.0

$clock = [Diagnostics.Stopwatch]::StartNew()
Import-Module $ModulePath
$importSeconds = $clock.Elapsed.TotalSeconds

$pass = ConvertTo-SecureString -String $env:HUBDR_BENCH_KEY_PASSPHRASE -AsPlainText -Force # lint-ignore: ConvertToSecureStringPlainText -- throwaway benchmark key, handed over by the parent through the environment
$cred = $null
if ($env:HUBDR_BENCH_DB_PASSWORD) {
    $cred = [pscredential]::new($env:HUBDR_BENCH_DB_USER, (ConvertTo-SecureString -String $env:HUBDR_BENCH_DB_PASSWORD -AsPlainText -Force)) # lint-ignore: ConvertToSecureStringPlainText -- throwaway benchmark server password from the parent
}

$log = [Collections.Generic.List[object]]::new()
$output = $null
$op = [Diagnostics.Stopwatch]::StartNew()
$collect = {
    process {
        if ($_ -is [Management.Automation.VerboseRecord]) {
            $log.Add([ordered]@{ t = [math]::Round($op.Elapsed.TotalSeconds, 3); message = $_.Message })
        } else {
            Set-Variable -Name output -Value $_ -Scope 1
        }
    }
}
switch ($Action) {
    'Key' {
        New-HubBackupKey -UserId 'HubDr Bench <bench@example.invalid>' -Algorithm $Algorithm -Passphrase $pass -OutputPath $KeyOutputPath -Verbose 4>&1 | & $collect
    }
    'Backup' {
        $p = @{
            Store = $Store; Hub = $Hub; DatabaseEngine = $Engine; ConnectionString = $ConnectionString
            RecipientKeyPath = $PublicKeyPath; SigningKeyPath = $SecretKeyPath; Passphrase = $pass
        }
        if ($cred) { $p.DatabaseCredential = $cred }
        if ($Compression) { $p.Compression = $Compression }
        New-HubBackup @p -Verbose 4>&1 | & $collect
    }
    'Restore' {
        $p = @{
            Store = $Store; Hub = $Hub; BackupId = $BackupId; Target = $ConnectionString
            SecretKeyPath = $SecretKeyPath; Passphrase = $pass; TrustedSignerKeyPath = $PublicKeyPath; TargetEngine = $Engine; Confirm = $false
        }
        if ($cred) { $p.TargetCredential = $cred }
        Restore-HubBackup @p -Verbose 4>&1 | & $collect
    }
    'Verify' {
        Test-HubBackupSignature -Store $Store -Hub $Hub -BackupId $BackupId -TrustedSignerKeyPath $PublicKeyPath -Verbose 4>&1 | & $collect
    }
}
$op.Stop()

$hwmKb = 0
foreach ($line in [IO.File]::ReadAllLines('/proc/self/status')) {
    if ($line -match '^VmHWM:\s+(\d+)\s+kB') { $hwmKb = [long]$Matches[1] }
}

$gcInfo = [GC]::GetGCMemoryInfo()
$result = [ordered]@{
    gc            = [ordered]@{
        totalAllocatedBytes = [GC]::GetTotalAllocatedBytes($false)
        gen0 = [GC]::CollectionCount(0); gen1 = [GC]::CollectionCount(1); gen2 = [GC]::CollectionCount(2)
        heapSizeBytes = $gcInfo.HeapSizeBytes; committedBytes = $gcInfo.TotalCommittedBytes
        serverGc = [Runtime.GCSettings]::IsServerGC
        pauseTimePercentage = $gcInfo.PauseTimePercentage
    }
    action        = $Action
    seconds       = [math]::Round($op.Elapsed.TotalSeconds, 3)
    importSeconds = [math]::Round($importSeconds, 3)
    vmHwmBytes    = $hwmKb * 1024
    verbose       = $log
    output        = $null
}
if ($null -ne $output) {
    $o = [ordered]@{}
    foreach ($prop in $output.PSObject.Properties) {
        $v = $prop.Value
        if ($null -eq $v -or $v -is [string] -or $v -is [ValueType]) { $o[$prop.Name] = if ($v -is [datetime] -or $v -is [timespan]) { "$v" } else { $v } }
        elseif ($v -is [array]) { $o[$prop.Name] = @($v | ForEach-Object { "$_" }) }
        else { $o[$prop.Name] = "$v" }
    }
    $result.output = $o
}
$result | ConvertTo-Json -Depth 6 | Set-Content -LiteralPath $ResultPath -Encoding utf8
