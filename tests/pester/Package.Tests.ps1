#requires -Version 7.4
# build.ps1 Package: what a PSGallery module ships (a .nupkg PSResourceGet installs, LICENSE, CHANGELOG, project links),
# a zip for Import-Module and one Azure Automation accepts, with native libraries only for PowerShell's platforms.
BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    $env:HUBDR_PACKAGE_ZIP | Should -Exist -Because 'build.ps1 Test runs the Package step'
    $env:HUBDR_AUTOMATION_ZIP | Should -Exist
    $env:HUBDR_PACKAGE_NUPKG | Should -Exist
    Add-Type -AssemblyName System.IO.Compression.FileSystem
    function script:Get-ZipEntry([string] $Path) {
        $z = [IO.Compression.ZipFile]::OpenRead($Path)
        try { $z.Entries.FullName -replace '\\', '/' } finally { $z.Dispose() }
    }
    # The platforms PowerShell 7.4 runs on, plus the RID-generic folders.
    $script:supported = 'win', 'unix', 'win-x64', 'win-x86', 'win-arm64', 'linux-x64', 'linux-arm64', 'linux-arm', 'linux-musl-x64', 'linux-musl-arm64', 'osx', 'osx-x64', 'osx-arm64'
    $script:sign = @"
`$k = New-HubBackupKey -UserId 'pkg <pkg@example.test>' -Algorithm EcdsaP256 -Passphrase (ConvertTo-SecureString 'p' -AsPlainText -Force) -OutputPath (Join-Path ([IO.Path]::GetTempPath()) ('hubdr-pkgkey-' + [guid]::NewGuid()))
`$k.Fingerprint.Length
"@
}

Describe 'Module packages' {
    It 'the Azure Automation zip is named after the module and holds the HubDr/ module folder at its root' {
        Split-Path $env:HUBDR_AUTOMATION_ZIP -Leaf | Should -Be 'HubDr.zip'
        $entries = Get-ZipEntry $env:HUBDR_AUTOMATION_ZIP
        $entries | Should -Contain 'HubDr/HubDr.psd1'
        $entries | Should -Contain 'HubDr/HubDr.Cmdlets.dll'
        $entries | Should -Contain 'HubDr/HubDr.Format.ps1xml'
        $entries | Should -Contain 'HubDr/dependencies/HubDr.Engine.dll'
        $entries | Should -Contain 'HubDr/en-US/HubDr.Cmdlets.dll-Help.xml'
        $entries | Should -Not -Contain 'HubDr.psd1' -Because 'Azure Automation wants the module folder, not loose files, at the root'
        @($entries | Where-Object { $_ -notlike 'HubDr/*' }) | Should -BeNullOrEmpty
        ($entries | Where-Object { $_ -like 'HubDr/dependencies/runtimes/linux-x64/native/*' }) | Should -Not -BeNullOrEmpty
        ($entries | Where-Object { $_ -like 'HubDr/dependencies/runtimes/win-x64/native/*' }) | Should -Not -BeNullOrEmpty
    }

    It 'ships native libraries only for the platforms PowerShell 7.4 runs on, and for each of them' {
        foreach ($package in $env:HUBDR_PACKAGE_ZIP, $env:HUBDR_AUTOMATION_ZIP) {
            $rids = Get-ZipEntry $package | Where-Object { $_ -match '^HubDr/dependencies/runtimes/([^/]+)/' } | ForEach-Object { $Matches[1] } | Sort-Object -Unique
            foreach ($rid in $rids) { $rid | Should -BeIn $supported -Because "$package should not carry libraries for $rid" }
            foreach ($rid in 'win-x64', 'win-x86', 'win-arm64', 'linux-x64', 'linux-arm64', 'linux-arm', 'linux-musl-x64', 'linux-musl-arm64', 'osx-x64', 'osx-arm64') {
                $rids | Should -Contain $rid
            }
        }
    }

    It 'carries LICENSE (MIT), CHANGELOG.md and the project links PSGallery shows' {
        $entries = Get-ZipEntry $env:HUBDR_PACKAGE_ZIP
        $entries | Should -Contain 'HubDr/LICENSE'
        $entries | Should -Contain 'HubDr/CHANGELOG.md'
        $root = Join-Path $PSScriptRoot '../..'
        Get-Content (Join-Path $root 'LICENSE') -Raw | Should -Match 'MIT License'
        (Get-Content (Join-Path $root 'CHANGELOG.md') -Raw) | Should -Match '## \[Unreleased\]'
        $manifest = Import-PowerShellDataFile (Join-Path $root 'module/HubDr.psd1')
        $manifest.HelpInfoUri | Should -Match '^https://'
        $manifest.PrivateData.PSData.ProjectUri | Should -Match '^https://'
        $manifest.PrivateData.PSData.LicenseUri | Should -Match '^https://'
        $manifest.PrivateData.PSData.ReleaseNotes | Should -Match 'CHANGELOG'
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
$sign
"@
        $out[0] | Should -Match 'New-HubBackup'
        $out[0] | Should -Match 'Invoke-HubRestoreTest'
        $out[1] | Should -Be '40'
        Remove-Item $dir -Recurse -Force
    }

    It 'the .nupkg installs with Install-PSResource and Save-PSResource from a local repository, and imports' {
        $repo = New-TestDirectory 'hubdr-repo'
        Copy-Item $env:HUBDR_PACKAGE_NUPKG $repo
        $home2 = New-TestDirectory 'hubdr-home'
        $saved = New-TestDirectory 'hubdr-saved'
        # .NET reports a missing ~/.local/share as '' and PSResourceGet would then write its repository list into $PWD.
        foreach ($d in '.local/share', '.config', '.cache') { $null = New-Item -ItemType Directory (Join-Path $home2 $d) -Force }
        # A throwaway HOME: the repository registration and the CurrentUser install stay out of the real profile.
        $out = Invoke-ChildPwsh -Environment @{ HOME = $home2; XDG_DATA_HOME = "$home2/.local/share"; XDG_CONFIG_HOME = "$home2/.config"; XDG_CACHE_HOME = "$home2/.cache" } -Script @"
`$ErrorActionPreference = 'Stop'
Register-PSResourceRepository -Name HubDrLocal -Uri '$repo' -Trusted
(Find-PSResource -Name HubDr -Repository HubDrLocal).Version.ToString()
Install-PSResource -Name HubDr -Repository HubDrLocal -Scope CurrentUser -TrustRepository -Quiet
`$installed = Get-InstalledPSResource -Name HubDr
`$installed.InstalledLocation
Save-PSResource -Name HubDr -Repository HubDrLocal -Path '$saved' -TrustRepository -Quiet
Import-Module HubDr
(Get-Module HubDr).ModuleBase
(Get-Command -Module HubDr).Count
$sign
"@
        $version = (Import-PowerShellDataFile (Join-Path $PSScriptRoot '../../module/HubDr.psd1')).ModuleVersion
        $out[0] | Should -Be $version
        "$($out[1])" | Should -BeLike "$home2*"
        "$($out[2])" | Should -BeLike "$home2*" -Because 'Import-Module HubDr loads the copy Install-PSResource installed'
        [int]"$($out[3])" | Should -BeGreaterOrEqual 7
        $out[4] | Should -Be '40'
        Join-Path $saved "HubDr/$version/HubDr.psd1" | Should -Exist
        Join-Path $saved "HubDr/$version/dependencies/HubDr.Engine.dll" | Should -Exist
        Remove-Item $repo, $home2, $saved -Recurse -Force -ErrorAction SilentlyContinue
    }
}
