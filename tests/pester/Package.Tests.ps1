#requires -Version 7.4
# build.ps1 Package: a zip for Import-Module / PSGallery and one Azure Automation accepts.
BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    $env:HUBDR_PACKAGE_ZIP | Should -Exist -Because 'build.ps1 Test runs the Package step'
    $env:HUBDR_AUTOMATION_ZIP | Should -Exist
    Add-Type -AssemblyName System.IO.Compression.FileSystem
    function script:Get-ZipEntry([string] $Path) {
        $z = [IO.Compression.ZipFile]::OpenRead($Path)
        try { $z.Entries.FullName -replace '\\', '/' } finally { $z.Dispose() }
    }
}

Describe 'Module packages' {
    It 'the Azure Automation zip is named after the module and holds the manifest at its root' {
        Split-Path $env:HUBDR_AUTOMATION_ZIP -Leaf | Should -Be 'HubDr.zip'
        $entries = Get-ZipEntry $env:HUBDR_AUTOMATION_ZIP
        $entries | Should -Contain 'HubDr.psd1'
        $entries | Should -Contain 'HubDr.Cmdlets.dll'
        $entries | Should -Contain 'HubDr.Format.ps1xml'
        $entries | Should -Contain 'dependencies/HubDr.Engine.dll'
        $entries | Should -Contain 'en-US/HubDr.Cmdlets.dll-Help.xml'
        ($entries | Where-Object { $_ -like 'dependencies/runtimes/linux-x64/native/*' }) | Should -Not -BeNullOrEmpty
        ($entries | Where-Object { $_ -like 'dependencies/runtimes/win-x64/native/*' }) | Should -Not -BeNullOrEmpty
    }

    It 'the Import-Module zip extracts to a HubDr folder that imports and works in a fresh session' {
        (Get-ZipEntry $env:HUBDR_PACKAGE_ZIP) | Should -Contain 'HubDr/HubDr.psd1'
        $dir = New-TestDirectory 'hubdr-pkg'
        Expand-Archive -Path $env:HUBDR_PACKAGE_ZIP -DestinationPath $dir
        $manifest = Test-ModuleManifest (Join-Path $dir 'HubDr/HubDr.psd1')
        $manifest.Version | Should -Not -BeNullOrEmpty
        $out = Invoke-ChildPwsh -Script @"
`$env:PSModulePath = '$dir' + [IO.Path]::PathSeparator + `$env:PSModulePath
Import-Module HubDr
(Get-Command -Module HubDr).Name -join ','
(New-HubBackupKey -UserId 'pkg <pkg@example.test>' -Algorithm EcdsaP256 -Passphrase (ConvertTo-SecureString 'p' -AsPlainText -Force) -OutputPath '$dir/keys').Fingerprint.Length
"@
        $out[0] | Should -Match 'New-HubBackup'
        $out[0] | Should -Match 'Invoke-HubRestoreTest'
        $out[1] | Should -Be '40'
        Remove-Item $dir -Recurse -Force
    }
}
