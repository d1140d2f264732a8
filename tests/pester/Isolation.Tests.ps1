#requires -Version 7.4
# HubDr must coexist with modules that ship other versions of its dependencies (Az.*, AWS.Tools, ...).
BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
}

Describe 'Assembly-load isolation' {
    It 'works after a different BouncyCastle.Cryptography was loaded into the session' {
        $env:HUBDR_OLD_BC_PATH | Should -Exist
        $work = New-TestDirectory 'hubdr-iso'
        $script = @"
`$ErrorActionPreference = 'Stop'
Add-Type -Path '$($env:HUBDR_OLD_BC_PATH)'
`$old = [AppDomain]::CurrentDomain.GetAssemblies() | Where-Object { `$_.GetName().Name -eq 'BouncyCastle.Cryptography' }
"before=" + [Diagnostics.FileVersionInfo]::GetVersionInfo(`$old.Location).ProductVersion
Import-Module '$($env:HUBDR_MODULE_PATH)'
Import-Module '$(Join-Path $PSScriptRoot 'TestHelpers.psm1')'
New-SampleSqliteHub -Path '$work/hub.db' -Rows 50
`$pass = ConvertTo-SecureString 'pw' -AsPlainText -Force
`$k = New-HubBackupKey -UserId 'iso <iso@example.test>' -Algorithm EcdsaP256 -Passphrase `$pass -OutputPath '$work/keys'
`$null = New-Item -ItemType Directory '$work/store'
`$b = New-HubBackup -Store '$work/store' -Hub iso -DatabaseEngine sqlite -ConnectionString '$work/hub.db' -RecipientKeyPath `$k.PublicKeyPath -SigningKeyPath `$k.SecretKeyPath -Passphrase `$pass
"valid=" + (`$b | Test-HubBackupSignature -TrustedSignerKeyPath `$k.PublicKeyPath -Quiet)
`$all = [AppDomain]::CurrentDomain.GetAssemblies() | Where-Object { `$_.GetName().Name -eq 'BouncyCastle.Cryptography' }
# The assembly version is 2.0.0.0 in every 2.x release; the product version tells them apart.
foreach (`$a in `$all) { "loaded=" + [Diagnostics.FileVersionInfo]::GetVersionInfo(`$a.Location).ProductVersion + "@" + [Runtime.Loader.AssemblyLoadContext]::GetLoadContext(`$a).Name }
"@
        $out = Invoke-ChildPwsh -Script $script
        ($out | Where-Object { $_ -like 'before=2.4.0*' }) | Should -Not -BeNullOrEmpty
        $out | Should -Contain 'valid=True'
        ($out | Where-Object { $_ -like 'loaded=2.4.0*@Default' }) | Should -Not -BeNullOrEmpty
        ($out | Where-Object { $_ -like 'loaded=2.7.*@HubDr' }) | Should -Not -BeNullOrEmpty
        Remove-Item $work -Recurse -Force
    }

    It 'keeps its dependencies out of the default load context' {
        $out = Invoke-ChildPwsh -Script @"
Import-Module '$($env:HUBDR_MODULE_PATH)'
`$null = Get-Command New-HubBackup
`$null = New-HubBackupKey -UserId 'x <x@example.test>' -Algorithm EcdsaP256 -Passphrase (ConvertTo-SecureString 'pw' -AsPlainText -Force) -OutputPath ([IO.Path]::GetTempPath() + [guid]::NewGuid())
[AppDomain]::CurrentDomain.GetAssemblies() | Where-Object { `$_.GetName().Name -in 'HubDr.Engine','BouncyCastle.Cryptography' } | ForEach-Object { `$_.GetName().Name + '@' + [Runtime.Loader.AssemblyLoadContext]::GetLoadContext(`$_).Name }
"@
        $out | Should -Contain 'HubDr.Engine@HubDr'
        $out | Should -Contain 'BouncyCastle.Cryptography@HubDr'
        $out | Should -Not -Contain 'BouncyCastle.Cryptography@Default'
    }
}
