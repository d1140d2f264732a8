#requires -Version 7.4
# What an admin and monitoring see: metrics, audit records, completion, formatting, progress.
BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-Module $env:HUBDR_MODULE_PATH -Force
    $script:work = New-TestDirectory 'hubdr-ops'
    $script:keys = New-TestKeySet -Path (Join-Path $work 'keys')
    $script:store = Join-Path $work 'store'
    $null = New-Item -ItemType Directory $store
    $script:db = Join-Path $work 'hub.db'
    New-SampleSqliteHub -Path $db -Rows 50
    $script:metrics = Join-Path $work 'hubdr.prom'
    $script:audit = Join-Path $work 'audit.jsonl'
    $script:args1 = @{ Store = $store; Hub = 'contoso'; DatabaseEngine = 'sqlite'; ConnectionString = $db; RecipientKeyPath = $keys.Ops.PublicKeyPath; SigningKeyPath = $keys.Ops.SecretKeyPath; Passphrase = $keys.Passphrase; MetricsPath = $metrics; AuditLogPath = $audit }
    $script:b = New-HubBackup @args1
    $bad = $args1.Clone(); $bad.ConnectionString = Join-Path $work 'missing.db'
    try { New-HubBackup @bad -ErrorAction Stop } catch { $script:failure = $_ }
}

AfterAll { Remove-Item $script:work -Recurse -Force -ErrorAction SilentlyContinue }

Describe 'Metrics and audit' {
    It 'counts the runbook metrics backup_success_total and backup_failure_total, labelled by hub' {
        $text = Get-Content $metrics -Raw
        $text | Should -Match '(?m)^backup_success_total\{hub="contoso"\} 1$'
        $text | Should -Match '(?m)^backup_failure_total\{hub="contoso"\} 1$'
        $text | Should -Match 'hubdr_last_success_timestamp_seconds\{.*operation="backup".*\}'
        $text | Should -Match '# TYPE backup_success_total counter'
    }

    It 'writes one audit record per operation, locally and into the store, without secrets' {
        $records = Get-Content $audit | ForEach-Object { $_ | ConvertFrom-Json }
        $records.Count | Should -Be 2
        ($records | Where-Object outcome -eq 'success').backupId | Should -Be $b.BackupId
        ($records | Where-Object outcome -eq 'failure').errorId | Should -Be 'DatabaseNotFound'
        $records[0].user | Should -Not -BeNullOrEmpty
        (Get-ChildItem (Join-Path $store '_audit') -Recurse -File).Count | Should -Be 2
        (Get-Content $audit -Raw) | Should -Not -Match ([regex]::Escape($keys.PlainPassphrase))
    }

    It 'sends the webhook alert for a failed backup' {
        $port = Get-Random -Minimum 49100 -Maximum 49900
        $hookFile = Join-Path $work 'backup-hook.json'
        $job = Start-ThreadJob -ArgumentList $port, $hookFile -ScriptBlock {
            param($port, $file)
            $l = [System.Net.HttpListener]::new(); $l.Prefixes.Add("http://127.0.0.1:$port/"); $l.Start()
            try {
                $ctx = $l.GetContext()
                Set-Content -LiteralPath $file -Value ([IO.StreamReader]::new($ctx.Request.InputStream).ReadToEnd())
                $ctx.Response.StatusCode = 200; $ctx.Response.Close()
            } finally { $l.Stop() }
        }
        try {
            Start-Sleep -Milliseconds 300
            $bad = $args1.Clone(); $bad.ConnectionString = Join-Path $work 'also-missing.db'; $bad.Remove('MetricsPath'); $bad.Remove('AuditLogPath')
            $e = Get-HubError { New-HubBackup @bad -WebhookUrl "http://127.0.0.1:$port/alerts" }
            Assert-HubError $e 'DatabaseNotFound' 'ObjectNotFound'
            $job | Wait-Job -Timeout 30 | Out-Null
            $alert = Get-Content $hookFile -Raw | ConvertFrom-Json
            $alert.event | Should -Be 'backup_failed'
            $alert.hub | Should -Be 'contoso'
            $alert.errorId | Should -Be 'DatabaseNotFound'
            $alert.text | Should -Not -BeNullOrEmpty
        } finally { $job | Remove-Job -Force -ErrorAction SilentlyContinue }
    }

    It 'a failed backup leaves nothing that looks like a backup' {
        $failure.FullyQualifiedErrorId | Should -BeLike 'DatabaseNotFound,*'
        (Get-HubBackup -Store $store -IncludeIncomplete).Count | Should -Be 1
    }
}

Describe 'PowerShell conventions' {
    It 'completes backup ids and hub names from the store' {
        $line = "Get-HubBackup -Store '$store' -BackupId "
        $c = TabExpansion2 -inputScript $line -cursorColumn $line.Length
        $c.CompletionMatches.CompletionText | Should -Contain $b.BackupId
        $line2 = "Get-HubBackup -Store '$store' -Hub con"
        (TabExpansion2 -inputScript $line2 -cursorColumn $line2.Length).CompletionMatches.CompletionText | Should -Contain 'contoso'
    }

    It 'formats HubBackup as a table that fits 120 columns' {
        $lines = Get-HubBackup -Store $store | Format-Table | Out-String -Width 120 -Stream | Where-Object { $_.Trim() }
        $lines[0] | Should -Match 'Hub\s+BackupId\s+Created'
        ($lines | Measure-Object -Property Length -Maximum).Maximum | Should -BeLessOrEqual 120
        $lines -join "`n" | Should -Match 'Complete'
    }

    It 'reports progress on long operations, and is silent when $ProgressPreference says so' {
        $ps = [powershell]::Create()
        try {
            $null = $ps.AddScript("Import-Module '$($env:HUBDR_MODULE_PATH)'; `$ProgressPreference = 'Continue'; Test-HubBackupSignature -Store '$store' -Hub contoso -BackupId '$($b.BackupId)' -TrustedSignerKeyPath '$($keys.Ops.PublicKeyPath)'")
            $r = $ps.Invoke()
            $r[0].IsValid | Should -BeTrue
            $ps.Streams.Progress.Count | Should -BeGreaterThan 0
            $ps.Streams.Progress[0].Activity | Should -Match 'Verifying'
        } finally { $ps.Dispose() }
        $ps2 = [powershell]::Create()
        try {
            $null = $ps2.AddScript("Import-Module '$($env:HUBDR_MODULE_PATH)'; `$ProgressPreference = 'SilentlyContinue'; Test-HubBackupSignature -Store '$store' -Hub contoso -BackupId '$($b.BackupId)' -TrustedSignerKeyPath '$($keys.Ops.PublicKeyPath)'")
            $null = $ps2.Invoke()
            $ps2.Streams.Progress.Count | Should -Be 0
        } finally { $ps2.Dispose() }
    }

    It 'tells the story of each step with -Verbose' {
        $v = Test-HubBackupSignature -Store $store -Hub contoso -BackupId $b.BackupId -TrustedSignerKeyPath $keys.Ops.PublicKeyPath -Verbose 4>&1 |
            Where-Object { $_ -is [System.Management.Automation.VerboseRecord] }
        ($v.Message -join "`n") | Should -Match 'Catalog signature'
        ($v.Message -join "`n") | Should -Match 'Archive'
    }
}
