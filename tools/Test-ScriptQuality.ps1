#requires -Version 7.4
<#
.SYNOPSIS
    A small static checker for the repository's PowerShell (PSScriptAnalyzer is not available here).

.DESCRIPTION
    Parses every *.ps1, *.psm1 and *.psd1 under -Path with the PowerShell parser (skipping out/, build/, bin/, obj/,
    node_modules/ and .git/) and reports, one per line as "path:line: rule: message":

      ParseError               the file does not parse
      UnapprovedVerb           a function named Verb-Noun whose verb is not in Get-Verb
      AliasUsed                a command invoked by an alias of a built-in cmdlet (%, ?, ls, cat, gci, select,
                               where, foreach, ...), including aliases that only exist on Windows (ls, cat, sort,
                               rm, ...) because scripts must behave the same on every platform
      InvokeExpression         Invoke-Expression / iex (code injection; call commands directly or use & with arrays)
      PlainTextPassword        a parameter named *Password* / *Passphrase* typed [string] outside tests/ (use
                               [SecureString] or [PSCredential]; test helpers need the plain text of throwaway
                               passphrases to drive the real gpg, so tests/ is exempt)
      ConvertToSecureStringPlainText
                               ConvertTo-SecureString -AsPlainText outside tests/ (secrets must not pass through
                               plain strings in product scripts; tests build throwaway passphrases this way)
      EmptyCatch               a catch block without statements (swallowed errors; handle, log or rethrow)

    Write-Host is allowed (build scripts talk to a console). Exits 1 when there is any finding, else 0.

    A deliberate exception is suppressed with a comment at the end of the line, or alone on the line above, naming
    the rule(s) and, after '--', why (a suppression without a reason is ignored):
        # lint-ignore: ConvertToSecureStringPlainText -- demo passphrase, never a real secret

.PARAMETER Path
    Repository root (or any folder, or a single file) to check.

.EXAMPLE
    ./tools/Test-ScriptQuality.ps1 -Path .
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory)][string] $Path
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 3.0

$root = (Resolve-Path -LiteralPath $Path).ProviderPath
$excluded = @('out', 'build', 'bin', 'obj', 'node_modules', '.git')

# Built-in aliases from a pristine session (no profile, no imported modules), plus the Windows-only ones that
# PowerShell does not define on Linux/macOS (there they silently run a different, native program).
$iss = [System.Management.Automation.Runspaces.InitialSessionState]::CreateDefault2()
$builtinAlias = @{}
foreach ($a in $iss.Commands | Where-Object { $_ -is [System.Management.Automation.Runspaces.SessionStateAliasEntry] }) {
    $builtinAlias[$a.Name] = $a.Definition
}
$windowsOnly = @{
    ac = 'Add-Content'; cat = 'Get-Content'; clear = 'Clear-Host'; compare = 'Compare-Object'; cp = 'Copy-Item'; cpp = 'Copy-ItemProperty'
    diff = 'Compare-Object'; kill = 'Stop-Process'; ls = 'Get-ChildItem'; man = 'help'; mount = 'New-PSDrive'; mv = 'Move-Item'
    ps = 'Get-Process'; rm = 'Remove-Item'; rmdir = 'Remove-Item'; sleep = 'Start-Sleep'; sort = 'Sort-Object'; start = 'Start-Process'
    tee = 'Tee-Object'; write = 'Write-Output'
}
foreach ($k in $windowsOnly.Keys) { if (-not $builtinAlias.ContainsKey($k)) { $builtinAlias[$k] = $windowsOnly[$k] } }
$approvedVerbs = [System.Collections.Generic.HashSet[string]]::new([string[]](Get-Verb).Verb, [StringComparer]::OrdinalIgnoreCase)

function Get-ScriptFile([string] $Folder) {
    if (Test-Path -LiteralPath $Folder -PathType Leaf) { return Get-Item -LiteralPath $Folder }
    foreach ($item in Get-ChildItem -LiteralPath $Folder -Force) {
        if ($item.PSIsContainer) {
            if ($item.Name -notin $excluded) { Get-ScriptFile $item.FullName }
        }
        elseif ($item.Extension -in '.ps1', '.psm1', '.psd1') { $item }
    }
}

function Get-RelativePath([string] $File) {
    if ($File -eq $root) { return Split-Path $File -Leaf }
    return [IO.Path]::GetRelativePath($root, $File).Replace('\', '/')
}

$findings = [System.Collections.Generic.List[string]]::new()
$suppressed = @{}
function Add-Finding([string] $File, [int] $Line, [string] $Rule, [string] $Message) {
    if ($suppressed.ContainsKey("${Line}:$Rule")) { return }
    $findings.Add("$(Get-RelativePath $File):${Line}: ${Rule}: $Message")
}

foreach ($file in @(Get-ScriptFile $root | Sort-Object FullName)) {
    $tokens = $null
    $errors = $null
    $ast = [System.Management.Automation.Language.Parser]::ParseFile($file.FullName, [ref] $tokens, [ref] $errors)
    # A lint-ignore comment after code covers its own line; on a line of its own it covers the next line.
    $suppressed = @{}
    $previousLine = 0
    foreach ($t in $tokens) {
        if ($t.Kind -eq 'Comment' -and $t.Text -match 'lint-ignore:\s*([A-Za-z]+(\s*,\s*[A-Za-z]+)*)\s+--\s*\S') {
            $line = ($previousLine -eq $t.Extent.StartLineNumber) ? $t.Extent.StartLineNumber : $t.Extent.EndLineNumber + 1
            foreach ($r in $Matches[1] -split '\s*,\s*') { $suppressed["${line}:$r"] = $true }
        }
        if ($t.Kind -ne 'NewLine') { $previousLine = $t.Extent.EndLineNumber }
    }
    foreach ($e in $errors) { Add-Finding $file.FullName $e.Extent.StartLineNumber 'ParseError' $e.Message }
    if ($errors.Count -gt 0) { continue }
    $rel = Get-RelativePath $file.FullName
    $isTest = $rel -match '^tests/' -or $rel -eq 'tests'

    foreach ($f in $ast.FindAll({ param($n) $n -is [System.Management.Automation.Language.FunctionDefinitionAst] }, $true)) {
        $name = $f.Name -replace '^(script|global|local|private):', ''
        if ($name -match '^([^-]+)-.+$' -and -not $approvedVerbs.Contains($Matches[1])) {
            Add-Finding $file.FullName $f.Extent.StartLineNumber 'UnapprovedVerb' "function '$name' uses the unapproved verb '$($Matches[1])' (see Get-Verb)."
        }
    }

    foreach ($c in $ast.FindAll({ param($n) $n -is [System.Management.Automation.Language.CommandAst] }, $true)) {
        $name = $c.GetCommandName()
        if (-not $name) { continue }
        if ($builtinAlias.ContainsKey($name) -and $name -notin 'iex') {
            Add-Finding $file.FullName $c.Extent.StartLineNumber 'AliasUsed' "'$name' is an alias; write '$($builtinAlias[$name])'."
        }
        if ($name -in 'Invoke-Expression', 'iex') {
            Add-Finding $file.FullName $c.Extent.StartLineNumber 'InvokeExpression' "'$name' runs a string as code; call the command directly (& with an argument array)."
        }
        if ($name -eq 'ConvertTo-SecureString' -and -not $isTest) {
            $plain = $c.CommandElements | Where-Object {
                $_ -is [System.Management.Automation.Language.CommandParameterAst] -and $_.ParameterName.Length -ge 3 -and 'AsPlainText'.StartsWith($_.ParameterName, [StringComparison]::OrdinalIgnoreCase)
            }
            if ($plain) {
                Add-Finding $file.FullName $c.Extent.StartLineNumber 'ConvertToSecureStringPlainText' 'ConvertTo-SecureString -AsPlainText puts a secret in a plain string; take a SecureString or PSCredential parameter, or read it with Get-Secret.'
            }
        }
    }

    foreach ($p in $ast.FindAll({ param($n) $n -is [System.Management.Automation.Language.ParameterAst] }, $true)) {
        $pname = $p.Name.VariablePath.UserPath
        if ($pname -match 'Password|Passphrase' -and $p.StaticType -in [string], [string[]] -and -not $isTest) {
            Add-Finding $file.FullName $p.Extent.StartLineNumber 'PlainTextPassword' "parameter `$$pname is a [string]; use [SecureString] or [PSCredential]."
        }
    }

    foreach ($k in $ast.FindAll({ param($n) $n -is [System.Management.Automation.Language.CatchClauseAst] }, $true)) {
        if ($k.Body.Statements.Count -eq 0 -and -not $k.Body.Traps) {
            Add-Finding $file.FullName $k.Extent.StartLineNumber 'EmptyCatch' 'empty catch block swallows the error; handle it, write it (Write-Verbose/Write-Warning) or rethrow.'
        }
    }
}

foreach ($f in $findings) { Write-Output $f }
if ($findings.Count -gt 0) {
    Write-Host "$($findings.Count) finding(s)." -ForegroundColor Yellow
    exit 1
}
Write-Host 'No findings.' -ForegroundColor Green
exit 0
