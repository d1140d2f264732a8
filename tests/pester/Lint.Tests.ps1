#requires -Version 7.4
# tools/Test-ScriptQuality.ps1: the repository's PowerShell is clean, and the checker really catches what it claims.
BeforeAll {
    $script:repo = (Resolve-Path (Join-Path $PSScriptRoot '../..')).ProviderPath
    $script:checker = Join-Path $repo 'tools/Test-ScriptQuality.ps1'
    function script:Invoke-Checker([string] $Path) {
        $lines = @(& $checker -Path $Path 6>$null)
        [pscustomobject]@{ ExitCode = $LASTEXITCODE; Findings = $lines }
    }
}

Describe 'The repository' {
    It 'has no script quality findings' {
        $r = Invoke-Checker $repo
        $r.Findings | Should -BeNullOrEmpty -Because 'tools/Test-ScriptQuality.ps1 lists path:line: rule: message for each'
        $r.ExitCode | Should -Be 0
    }
}

Describe 'The checker' {
    BeforeAll {
        $script:dir = Join-Path $TestDrive 'planted'
        $null = New-Item -ItemType Directory -Path (Join-Path $dir 'tests') -Force
        $null = New-Item -ItemType Directory -Path (Join-Path $dir 'out') -Force
        # One violation of every rule, each on a known line.
        @'
function Fetch-Thing { param([string] $Name) $Name }
Get-ChildItem | % { $_.Name } | ? { $_ } | select -First 1
ls /tmp
cat ./file.txt
Get-Process | foreach { $_.Id } | where { $_ -gt 1 }
Invoke-Expression 'Get-Date'
function Set-Secret { param([string] $AdminPassword, [SecureString] $GoodPassphrase) }
$s = ConvertTo-SecureString 'x' -AsPlainText -Force
try { Get-Item ./nothing } catch { }
try { Get-Item ./nothing } catch {
    # only a comment
}
gci -Recurse
Write-Host 'allowed'
'@ | Set-Content (Join-Path $dir 'bad.ps1')
        'function Get-Broken { param( $x ' | Set-Content (Join-Path $dir 'broken.psm1')
        # Test code may build throwaway SecureStrings and take plain passphrases for gpg.
        @'
function New-Key { param([string] $Passphrase) ConvertTo-SecureString $Passphrase -AsPlainText -Force }
'@ | Set-Content (Join-Path $dir 'tests/Helper.psm1')
        # Build output is not checked.
        'ls' | Set-Content (Join-Path $dir 'out/generated.ps1')
        $script:result = Invoke-Checker $dir
        $script:text = $result.Findings -join "`n"
    }

    It 'exits 1 when there are findings' {
        $result.ExitCode | Should -Be 1
    }

    It 'prints findings as path:line: rule: message' {
        foreach ($f in $result.Findings) { $f | Should -Match '^[^:]+:\d+: [A-Za-z]+: .+' }
    }

    It 'flags <Rule> at bad.ps1:<Line>' -ForEach @(
        @{ Rule = 'UnapprovedVerb'; Line = 1 }
        @{ Rule = 'AliasUsed'; Line = 2 }
        @{ Rule = 'AliasUsed'; Line = 3 }
        @{ Rule = 'AliasUsed'; Line = 4 }
        @{ Rule = 'AliasUsed'; Line = 5 }
        @{ Rule = 'InvokeExpression'; Line = 6 }
        @{ Rule = 'PlainTextPassword'; Line = 7 }
        @{ Rule = 'ConvertToSecureStringPlainText'; Line = 8 }
        @{ Rule = 'EmptyCatch'; Line = 9 }
        @{ Rule = 'EmptyCatch'; Line = 10 }
        @{ Rule = 'AliasUsed'; Line = 13 }
    ) {
        $text | Should -Match ([regex]::Escape("bad.ps1:${Line}: ${Rule}:"))
    }

    It 'names every alias it finds' {
        foreach ($a in '%', '?', 'select', 'ls', 'cat', 'foreach', 'where', 'gci') {
            $text | Should -Match ([regex]::Escape("'$a' is an alias"))
        }
    }

    It 'reports parse errors' {
        $text | Should -Match 'broken\.psm1:\d+: ParseError:'
    }

    It 'does not flag Write-Host, a SecureString parameter or approved verbs' {
        $text | Should -Not -Match 'bad\.ps1:14:'
        $text | Should -Not -Match 'GoodPassphrase'
        $text | Should -Not -Match "function 'Set-Secret'"
    }

    It 'exempts tests/ from the plain-text secret rules and skips out/' {
        $text | Should -Not -Match 'tests/Helper\.psm1'
        $text | Should -Not -Match 'out/generated'
    }

    It 'honours a justified lint-ignore comment and nothing else' {
        $d = Join-Path $TestDrive 'suppressed'
        $null = New-Item -ItemType Directory -Path $d
        @'
# lint-ignore: ConvertToSecureStringPlainText -- throwaway demo passphrase
$a = ConvertTo-SecureString 'demo' -AsPlainText -Force
$b = ConvertTo-SecureString 'demo' -AsPlainText -Force # lint-ignore: ConvertToSecureStringPlainText -- demo
$c = ConvertTo-SecureString 'demo' -AsPlainText -Force # lint-ignore: ConvertToSecureStringPlainText
'@ | Set-Content (Join-Path $d 'demo.ps1')
        $r = Invoke-Checker $d
        $r.Findings | Should -HaveCount 1 -Because 'a suppression without a reason does not count'
        $r.Findings[0] | Should -Match '^demo\.ps1:4: ConvertToSecureStringPlainText:'
    }

    It 'exits 0 on clean scripts' {
        $d = Join-Path $TestDrive 'clean'
        $null = New-Item -ItemType Directory -Path $d
        @'
function Get-Thing { param([SecureString] $Passphrase) Get-ChildItem | ForEach-Object Name | Where-Object { $_ } | Select-Object -First 1 }
try { Get-Item ./x } catch { Write-Verbose "ignored: $_" }
foreach ($i in 1..2) { $i }
'@ | Set-Content (Join-Path $d 'good.ps1')
        $r = Invoke-Checker $d
        $r.Findings | Should -BeNullOrEmpty
        $r.ExitCode | Should -Be 0
    }
}
