#requires -Version 7.4
<#
.SYNOPSIS
    Listing and retention planning at scale: Get-HubBackup and Remove-ExpiredHubBackup -WhatIf over N backups.
.DESCRIPTION
    Makes one real backup (the newest, signature-valid) and N-1 synthetic complete backups (catalog records spread over
    N/4 days, 4 a day) in a local folder store — or, with -S3, in a bucket on the S3 emulator of tests/emulators — then
    times listing, and retention planning (listing + catalog reads + newest-valid check + policy) with -WhatIf.
    Prints seconds per operation. Issue targets: listing 10,000 backups stays fast; the plan for 10,000 in under a second
    (the pure policy function; the cmdlet's time is dominated by listing and is printed separately).
.EXAMPLE
    dotnet pwsh bench/Measure-Listing.ps1 -ModulePath out/HubDr/HubDr.psd1 -Count 10000
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory)][string] $ModulePath,
    [int] $Count = 10000,
    [switch] $S3
)
$ErrorActionPreference = 'Stop'
Import-Module $ModulePath
$work = Join-Path ([IO.Path]::GetTempPath()) ('hubdr-listing-' + [guid]::NewGuid().ToString('N').Substring(0, 8))
$null = New-Item -ItemType Directory $work
try {
    $pass = ConvertTo-SecureString 'bench' -AsPlainText -Force # lint-ignore: ConvertToSecureStringPlainText -- throwaway benchmark key
    $key = New-HubBackupKey -UserId 'bench <bench@example.test>' -Algorithm EcdsaP256 -Passphrase $pass -OutputPath (Join-Path $work 'keys')
    $db = Join-Path $work 'hub.db'
    'CREATE TABLE t(x); INSERT INTO t VALUES (1);' | & sqlite3 $db
    $local = Join-Path $work 'store'
    $null = New-Item -ItemType Directory $local
    $real = New-HubBackup -Store $local -Hub bench -DatabaseEngine sqlite -ConnectionString $db -RecipientKeyPath $key.PublicKeyPath -SigningKeyPath $key.SecretKeyPath -Passphrase $pass
    $catalog = Get-Content (Join-Path $local "bench/$($real.BackupId)/catalog.json") -Raw | ConvertFrom-Json -AsHashtable
    $newest = [datetime]$real.Created
    $sw = [Diagnostics.Stopwatch]::StartNew()
    for ($i = 1; $i -lt $Count; $i++) {
        $t = $newest.AddHours(-6 * $i)
        $id = $t.ToString("yyyyMMdd'T'HHmmss'Z'") + '-' + ('{0:x6}' -f $i)
        $dir = [IO.Directory]::CreateDirectory((Join-Path $local "bench/$id")).FullName
        $catalog.backupId = $id; $catalog.createdUtc = $t.ToString('o')
        [IO.File]::WriteAllText((Join-Path $dir 'catalog.json'), ($catalog | ConvertTo-Json -Compress))
        [IO.File]::WriteAllBytes((Join-Path $dir $catalog.archive), [byte[]](1, 2, 3))
    }
    Write-Host ("Generated {0} synthetic backups in {1:0.0}s" -f ($Count - 1), $sw.Elapsed.TotalSeconds)
    $store = $local
    $storeArgs = @{}
    if ($S3) {
        foreach ($v in 'HUBDR_TEST_S3_ENDPOINT', 'HUBDR_TEST_S3_ACCESS_KEY', 'HUBDR_TEST_S3_SECRET_KEY') { if (-not [Environment]::GetEnvironmentVariable($v)) { throw "$v not set: start tests/emulators/emulators.sh and load emulators.env" } }
        $bucket = 'hubdr-listing-' + (Get-Random)
        $env:AWS_ACCESS_KEY_ID = $env:HUBDR_TEST_S3_ACCESS_KEY; $env:AWS_SECRET_ACCESS_KEY = $env:HUBDR_TEST_S3_SECRET_KEY; $env:AWS_DEFAULT_REGION = 'us-east-1'
        & /usr/bin/aws --endpoint-url $env:HUBDR_TEST_S3_ENDPOINT s3api create-bucket --bucket $bucket | Out-Null
        $sw.Restart()
        & /usr/bin/aws --endpoint-url $env:HUBDR_TEST_S3_ENDPOINT s3 cp --recursive --quiet $local "s3://$bucket/" | Out-Null
        Write-Host ("Uploaded to the S3 emulator in {0:0.0}s" -f $sw.Elapsed.TotalSeconds)
        $store = "s3://$bucket"
        $storeArgs = @{ StoreEndpoint = $env:HUBDR_TEST_S3_ENDPOINT; StoreCredential = [pscredential]::new($env:HUBDR_TEST_S3_ACCESS_KEY, (ConvertTo-SecureString $env:HUBDR_TEST_S3_SECRET_KEY -AsPlainText -Force)) } # lint-ignore: ConvertToSecureStringPlainText -- emulator's public test key
    }
    $sw.Restart(); $all = Get-HubBackup -Store $store @storeArgs; $list = $sw.Elapsed.TotalSeconds
    $sw.Restart(); $latest = Get-HubBackup -Store $store @storeArgs -Hub bench -Latest; $latestT = $sw.Elapsed.TotalSeconds
    $sw.Restart(); $plan = Remove-ExpiredHubBackup -Store $store @storeArgs -Hub bench -TrustedSignerKeyPath $key.PublicKeyPath -WhatIf 6>$null; $planT = $sw.Elapsed.TotalSeconds
    if ($all.Count -ne $Count -or $latest.BackupId -ne $real.BackupId -or $plan.Count -ne $Count) { throw "Unexpected results: $($all.Count) listed, latest $($latest.BackupId), $($plan.Count) decisions" }
    [pscustomobject]@{
        Store                   = if ($S3) { 's3 (emulator)' } else { 'local folder' }
        Backups                 = $Count
        'Get-HubBackup (s)'     = [math]::Round($list, 2)
        'Get-HubBackup -Latest (s)' = [math]::Round($latestT, 2)
        'Retention plan, -WhatIf (s)' = [math]::Round($planT, 2)
        Kept                    = ($plan | Where-Object Action -eq 'Keep').Count
    } | Format-List
}
finally {
    Remove-Item $work -Recurse -Force -ErrorAction SilentlyContinue
}
