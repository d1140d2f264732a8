#requires -Version 7.4
<#
.SYNOPSIS
    Converts the cmdlet help markdown in docs/help into MAML (HubDr.Cmdlets.dll-Help.xml) and about_HubDr.help.txt.

.DESCRIPTION
    platyPS is not available here, so this script reads a platyPS-like markdown format (documented in
    docs/help/README.md) and writes:

      <OutputPath>/HubDr.Cmdlets.dll-Help.xml   one command:command per docs/help/<Verb-Noun>.md
      <OutputPath>/about_HubDr.help.txt         from docs/help/about_HubDr.md

    Syntax blocks and parameter attributes (type, required, position, pipeline input, aliases, wildcards) are
    taken from the compiled cmdlets: the script imports the built module (the .psd1 in the parent folder of
    OutputPath, or -ModulePath) in a child PowerShell process and reads Get-Command metadata, so the help can never
    disagree with the code about them. Descriptions, examples, inputs, outputs, notes and links come from the
    markdown. A parameter the cmdlet has but the markdown does not describe gets a warning (and an empty
    description, which tests/pester/Help.Tests.ps1 fails on); a markdown parameter the cmdlet lacks is an error.

.PARAMETER MarkdownPath
    Folder with <Verb-Noun>.md files and about_HubDr.md.

.PARAMETER OutputPath
    Folder that receives the MAML file and the about topic (created when missing), normally <module>/en-US.

.PARAMETER ModulePath
    The built module manifest to read cmdlet metadata from. Default: the only .psd1 in OutputPath's parent folder.

.EXAMPLE
    ./tools/New-MamlHelp.ps1 -MarkdownPath docs/help -OutputPath out/HubDr/en-US
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory)][string] $MarkdownPath,
    [Parameter(Mandatory)][string] $OutputPath,
    [string] $ModulePath
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 3.0

$MarkdownPath = (Resolve-Path -LiteralPath $MarkdownPath).ProviderPath
$OutputPath = $ExecutionContext.SessionState.Path.GetUnresolvedProviderPathFromPSPath($OutputPath)
$null = New-Item -ItemType Directory -Path $OutputPath -Force

# ---------------------------------------------------------------------------------------------- markdown parsing

function Split-MarkdownSection {
    <# Splits lines into sections by heading level ('## ' or '### '), skipping fenced code when looking for headings. #>
    param([string[]] $Lines, [int] $Level)
    $prefix = ('#' * $Level) + ' '
    $sections = [System.Collections.Generic.List[object]]::new()
    $current = $null
    $inFence = $false
    foreach ($line in $Lines) {
        if ($line -match '^\s*```') { $inFence = -not $inFence }
        if (-not $inFence -and $line.StartsWith($prefix)) {
            $current = [pscustomobject]@{ Title = $line.Substring($prefix.Length).Trim(); Lines = [System.Collections.Generic.List[string]]::new() }
            $sections.Add($current)
            continue
        }
        if ($null -ne $current) { $current.Lines.Add($line) }
    }
    return , $sections
}

function ConvertTo-Paragraph {
    <#
    Markdown body -> paragraphs: blank lines separate paragraphs; list items ('* ', '- ', '1. ') each start one;
    fenced code is kept verbatim as one paragraph; inline markdown (`code`, **bold**, [text](link)) is simplified.
    #>
    param([string[]] $Lines)
    $paras = [System.Collections.Generic.List[string]]::new()
    $buffer = [System.Collections.Generic.List[string]]::new()
    $fence = $null
    $flush = {
        if ($buffer.Count -gt 0) { $paras.Add((Format-Inline ($buffer -join ' '))); $buffer.Clear() }
    }
    foreach ($line in $Lines) {
        if ($null -ne $fence) {
            if ($line -match '^\s*```') { $paras.Add(($fence -join "`n")); $fence = $null } else { $fence.Add($line) }
            continue
        }
        if ($line -match '^\s*```') { & $flush; $fence = [System.Collections.Generic.List[string]]::new(); continue }
        if ($line.Trim() -eq '') { & $flush; continue }
        if ($line -match '^\s*([*-]|\d+\.)\s+') { & $flush }
        $buffer.Add($line.Trim())
    }
    & $flush
    if ($null -ne $fence) { $paras.Add(($fence -join "`n")) }
    return , $paras
}

function Format-Inline([string] $Text) {
    $t = [regex]::Replace($Text, '\[([^\]]+)\]\(([^)]+)\)', { param($m) if ($m.Groups[2].Value -match '^https?://') { "$($m.Groups[1].Value) ($($m.Groups[2].Value))" } else { $m.Groups[1].Value } })
    $t = $t -replace '\*\*([^*]+)\*\*', '$1' -replace '`([^`]+)`', '$1'
    return $t
}

function Get-FencedCode {
    <# First fenced code block of a section (the example's code) and the lines after it (the remarks). #>
    param([string[]] $Lines)
    $code = [System.Collections.Generic.List[string]]::new()
    $state = 'before'
    $rest = [System.Collections.Generic.List[string]]::new()
    $before = [System.Collections.Generic.List[string]]::new()
    foreach ($line in $Lines) {
        switch ($state) {
            'before' { if ($line -match '^\s*```') { $state = 'in' } else { $before.Add($line) } }
            'in' { if ($line -match '^\s*```') { $state = 'after' } else { $code.Add($line) } }
            'after' { $rest.Add($line) }
        }
    }
    return [pscustomobject]@{ Code = ($code -join "`n"); Intro = $before.ToArray(); Remarks = $rest.ToArray() }
}

function Read-CommandMarkdown {
    param([string] $Path)
    $lines = @(Get-Content -LiteralPath $Path)
    # Optional YAML front matter (platyPS style) is skipped.
    if ($lines.Count -gt 0 -and $lines[0] -eq '---') {
        $end = [Array]::IndexOf($lines, '---', 1)
        if ($end -gt 0) { $lines = $lines[($end + 1)..($lines.Count - 1)] }
    }
    $title = ($lines | Where-Object { $_ -match '^# ' } | Select-Object -First 1)
    if (-not $title) { throw "$Path has no '# Verb-Noun' title." }
    $doc = [ordered]@{
        Name = $title.Substring(2).Trim(); Synopsis = ''; Description = @(); Examples = @(); Parameters = [ordered]@{}
        Inputs = @(); Outputs = @(); Notes = @(); Links = @()
    }
    foreach ($s in (Split-MarkdownSection -Lines $lines -Level 2)) {
        switch ($s.Title.ToUpperInvariant()) {
            'SYNOPSIS' { $doc.Synopsis = (ConvertTo-Paragraph $s.Lines) -join ' ' }
            'SYNTAX' { }  # generated from the compiled cmdlet
            'DESCRIPTION' { $doc.Description = ConvertTo-Paragraph $s.Lines }
            'EXAMPLES' {
                $doc.Examples = foreach ($e in (Split-MarkdownSection -Lines $s.Lines -Level 3)) {
                    $c = Get-FencedCode $e.Lines
                    if (-not $c.Code.Trim()) { throw "$Path, '$($e.Title)': the example has no ``````powershell code block." }
                    [pscustomobject]@{ Title = $e.Title; Code = $c.Code; Remarks = @(ConvertTo-Paragraph (@($c.Intro) + @($c.Remarks))) }
                }
            }
            'PARAMETERS' {
                foreach ($p in (Split-MarkdownSection -Lines $s.Lines -Level 3)) {
                    $name = $p.Title.TrimStart('-').Trim()
                    $doc.Parameters[$name] = ConvertTo-Paragraph $p.Lines
                }
            }
            { $_ -in 'INPUTS', 'OUTPUTS' } {
                $items = foreach ($t in (Split-MarkdownSection -Lines $s.Lines -Level 3)) {
                    [pscustomobject]@{ Type = $t.Title; Description = ConvertTo-Paragraph $t.Lines }
                }
                if ($_ -eq 'INPUTS') { $doc.Inputs = @($items) } else { $doc.Outputs = @($items) }
            }
            'NOTES' { $doc.Notes = ConvertTo-Paragraph $s.Lines }
            'RELATED LINKS' {
                $doc.Links = foreach ($l in $s.Lines) {
                    if ($l -match '^\s*[*-]?\s*\[([^\]]+)\]\(([^)]*)\)') {
                        [pscustomobject]@{ Text = $Matches[1]; Uri = ($Matches[2] -match '^https?://') ? $Matches[2] : '' }
                    }
                }
            }
            default { throw "$Path has an unknown section '## $($s.Title)'." }
        }
    }
    if (-not $doc.Synopsis) { throw "$Path has no SYNOPSIS." }
    return [pscustomobject]$doc
}

# ---------------------------------------------------------------------------------------------- cmdlet metadata

function Get-CommandMetadata {
    <# Imports the built module in a child process (binary modules cannot be unloaded) and returns parameter metadata as data. #>
    param([string] $Manifest)
    $script = {
        param($Manifest)
        $ErrorActionPreference = 'Stop'
        $m = Import-Module $Manifest -PassThru -Force
        $common = [System.Management.Automation.Cmdlet]::CommonParameters + [System.Management.Automation.Cmdlet]::OptionalCommonParameters
        $result = foreach ($c in (Get-Command -Module $m.Name -CommandType Cmdlet)) {
            [pscustomobject]@{
                Name = $c.Name
                Verb = $c.Verb
                Noun = $c.Noun
                OutputType = @($c.OutputType | ForEach-Object { $_.Name })
                Sets = @(foreach ($set in $c.ParameterSets) {
                        [pscustomobject]@{
                            Name = $set.Name; IsDefault = $set.IsDefault
                            Parameters = @(foreach ($p in $set.Parameters) {
                                    if ($p.Name -in [System.Management.Automation.Cmdlet]::CommonParameters) { continue }
                                    $t = [Nullable]::GetUnderlyingType($p.ParameterType) ?? $p.ParameterType
                                    [pscustomobject]@{
                                        Name = $p.Name; Type = $t.FullName; TypeName = $t.Name
                                        IsSwitch = $p.ParameterType -eq [System.Management.Automation.SwitchParameter]
                                        Mandatory = $p.IsMandatory; Position = $p.Position
                                        ByValue = $p.ValueFromPipeline; ByPropertyName = $p.ValueFromPipelineByPropertyName
                                        Aliases = @($p.Aliases)
                                        Wildcards = [bool]($c.Parameters[$p.Name].Attributes | Where-Object { $_ -is [System.Management.Automation.SupportsWildcardsAttribute] })
                                        IsCommon = $p.Name -in $common
                                        ValidValues = @($c.Parameters[$p.Name].Attributes | Where-Object { $_ -is [System.Management.Automation.ValidateSetAttribute] } | ForEach-Object { $_.ValidValues })
                                    }
                                })
                        }
                    })
            }
        }
        $result | ConvertTo-Json -Depth 8 -Compress
    }
    $exe = [Environment]::ProcessPath
    # Under 'dotnet pwsh' the process is dotnet running pwsh.dll; elsewhere it is pwsh itself.
    [string[]] $childArgs = @()
    if ([IO.Path]::GetFileNameWithoutExtension($exe) -eq 'dotnet') { $childArgs += Join-Path $PSHOME 'pwsh.dll' }
    $encoded = [Convert]::ToBase64String([Text.Encoding]::Unicode.GetBytes("& { $script } '$($Manifest -replace "'", "''")'"))
    $childArgs += @('-NoProfile', '-NonInteractive', '-EncodedCommand', $encoded)
    $json = & $exe @childArgs
    if ($LASTEXITCODE -ne 0) { throw "Reading cmdlet metadata from $Manifest failed (exit code $LASTEXITCODE)." }
    $table = @{}
    foreach ($c in @(($json -join "`n") | ConvertFrom-Json)) { $table[$c.Name] = $c }
    return $table
}

# ---------------------------------------------------------------------------------------------- MAML writing

$nsMaml = 'http://schemas.microsoft.com/maml/2004/10'
$nsCommand = 'http://schemas.microsoft.com/maml/dev/command/2004/10'
$nsDev = 'http://schemas.microsoft.com/maml/dev/2004/10'

$standardParameter = @{
    WhatIf  = 'Shows what would happen if the cmdlet runs. The cmdlet is not run.'
    Confirm = 'Prompts you for confirmation before running the cmdlet.'
}

function Write-Para([System.Xml.XmlWriter] $W, [string[]] $Paragraphs) {
    foreach ($p in $Paragraphs) { $W.WriteElementString('maml', 'para', $nsMaml, $p) }
}

function Write-Description([System.Xml.XmlWriter] $W, [string[]] $Paragraphs) {
    $W.WriteStartElement('maml', 'description', $nsMaml)
    Write-Para $W $Paragraphs
    $W.WriteEndElement()
}

function Write-Parameter {
    param([System.Xml.XmlWriter] $W, $P, [string[]] $Description, [bool] $Required, $Position, [bool] $InSyntax)
    $pipeline = if ($P.ByValue -and $P.ByPropertyName) { 'True (ByPropertyName, ByValue)' }
    elseif ($P.ByValue) { 'True (ByValue)' } elseif ($P.ByPropertyName) { 'True (ByPropertyName)' } else { 'False' }
    $W.WriteStartElement('command', 'parameter', $nsCommand)
    $W.WriteAttributeString('required', $Required.ToString().ToLowerInvariant())
    $W.WriteAttributeString('variableLength', ($P.Type -like '*`[`]').ToString().ToLowerInvariant())
    $W.WriteAttributeString('globbing', $P.Wildcards.ToString().ToLowerInvariant())
    $W.WriteAttributeString('pipelineInput', $pipeline)
    $W.WriteAttributeString('position', ($Position -ge 0 -and $Position -ne [int]::MinValue) ? [string]$Position : 'named')
    $W.WriteAttributeString('aliases', (@($P.Aliases).Count -gt 0) ? (@($P.Aliases) -join ', ') : 'none')
    $W.WriteElementString('maml', 'name', $nsMaml, $P.Name)
    Write-Description $W $Description
    if (@($P.ValidValues).Count -gt 0) {
        $W.WriteStartElement('command', 'parameterValueGroup', $nsCommand)
        foreach ($v in $P.ValidValues) {
            $W.WriteStartElement('command', 'parameterValue', $nsCommand)
            $W.WriteAttributeString('required', 'false'); $W.WriteAttributeString('variableLength', 'false')
            $W.WriteString($v); $W.WriteEndElement()
        }
        $W.WriteEndElement()
    }
    if (-not ($P.IsSwitch -and $InSyntax)) {
        $W.WriteStartElement('command', 'parameterValue', $nsCommand)
        $W.WriteAttributeString('required', (-not $P.IsSwitch).ToString().ToLowerInvariant())
        $W.WriteAttributeString('variableLength', 'false')
        $W.WriteString($P.TypeName)
        $W.WriteEndElement()
    }
    $W.WriteStartElement('dev', 'type', $nsDev)
    $W.WriteElementString('maml', 'name', $nsMaml, $P.Type)
    $W.WriteElementString('maml', 'uri', $nsMaml, '')
    $W.WriteEndElement()
    $W.WriteElementString('dev', 'defaultValue', $nsDev, $P.IsSwitch ? 'False' : 'None')
    $W.WriteEndElement()
}

function Get-ParameterDescription($Doc, [string] $Name) {
    if ($Doc.Parameters.Contains($Name)) { return @($Doc.Parameters[$Name]) }
    if ($standardParameter.ContainsKey($Name)) { return @($standardParameter[$Name]) }
    return @()
}

function Write-Command {
    param([System.Xml.XmlWriter] $W, $Doc, $Meta)
    $verb, $noun = $Doc.Name -split '-', 2
    $W.WriteStartElement('command', 'command', $nsCommand)
    $W.WriteAttributeString('xmlns', 'maml', $null, $nsMaml)
    $W.WriteAttributeString('xmlns', 'command', $null, $nsCommand)
    $W.WriteAttributeString('xmlns', 'dev', $null, $nsDev)

    $W.WriteStartElement('command', 'details', $nsCommand)
    $W.WriteElementString('command', 'name', $nsCommand, $Doc.Name)
    $W.WriteElementString('command', 'verb', $nsCommand, $verb)
    $W.WriteElementString('command', 'noun', $nsCommand, $noun)
    Write-Description $W @($Doc.Synopsis)
    $W.WriteEndElement()

    Write-Description $W $Doc.Description

    if ($null -ne $Meta) {
        $W.WriteStartElement('command', 'syntax', $nsCommand)
        $sets = @($Meta.Sets | Sort-Object { -not $_.IsDefault }, Name)
        foreach ($set in $sets) {
            $W.WriteStartElement('command', 'syntaxItem', $nsCommand)
            $W.WriteElementString('maml', 'name', $nsMaml, $Doc.Name)
            # Positional first, then mandatory, then in the markdown's order (the author's), common ones last.
            $docOrder = @($Doc.Parameters.Keys)
            $ordered = @($set.Parameters | Sort-Object { ($_.Position -ge 0) ? $_.Position : [int]::MaxValue }, { -not $_.Mandatory }, { $_.IsCommon },
                { $i = [Array]::IndexOf($docOrder, $_.Name); ($i -ge 0) ? $i : [int]::MaxValue })
            foreach ($p in $ordered) {
                Write-Parameter -W $W -P $p -Description (Get-ParameterDescription $Doc $p.Name) -Required $p.Mandatory -Position $p.Position -InSyntax $true
            }
            $W.WriteEndElement()
        }
        $W.WriteEndElement()

        $W.WriteStartElement('command', 'parameters', $nsCommand)
        $all = @($Meta.Sets | ForEach-Object { $_.Parameters }) | Group-Object Name
        $docOrder = @($Doc.Parameters.Keys)
        foreach ($g in ($all | Sort-Object { $_.Group[0].IsCommon }, { $i = [Array]::IndexOf($docOrder, $_.Name); ($i -ge 0) ? $i : [int]::MaxValue }, Name)) {
            $p = $g.Group[0]
            $required = @($g.Group | Where-Object { -not $_.Mandatory }).Count -eq 0
            $position = ($g.Group | Where-Object { $_.Position -ge 0 } | Select-Object -First 1)?.Position ?? -1
            $byValue = @($g.Group | Where-Object ByValue).Count -gt 0
            $byName = @($g.Group | Where-Object ByPropertyName).Count -gt 0
            $merged = $p.PSObject.Copy(); $merged.ByValue = $byValue; $merged.ByPropertyName = $byName
            $description = @(Get-ParameterDescription $Doc $p.Name)
            if ($description.Count -eq 0) { Write-Warning "$($Doc.Name): parameter -$($p.Name) has no description in the markdown." }
            Write-Parameter -W $W -P $merged -Description $description -Required $required -Position $position -InSyntax $false
        }
        $W.WriteEndElement()
        foreach ($name in $Doc.Parameters.Keys) {
            if (-not ($all | Where-Object Name -EQ $name)) { throw "$($Doc.Name).md documents -$name, which the cmdlet does not have." }
        }
    }
    else {
        # No compiled module: parameters with descriptions only (Get-Help still shows them).
        $W.WriteStartElement('command', 'parameters', $nsCommand)
        foreach ($name in $Doc.Parameters.Keys) {
            $p = [pscustomobject]@{ Name = $name; Type = 'System.Object'; TypeName = 'Object'; IsSwitch = $false; ByValue = $false; ByPropertyName = $false; Aliases = @(); Wildcards = $false; ValidValues = @() }
            Write-Parameter -W $W -P $p -Description $Doc.Parameters[$name] -Required $false -Position -1 -InSyntax $false
        }
        $W.WriteEndElement()
    }

    $W.WriteStartElement('command', 'inputTypes', $nsCommand)
    foreach ($i in $Doc.Inputs) {
        $W.WriteStartElement('command', 'inputType', $nsCommand)
        $W.WriteStartElement('dev', 'type', $nsDev); $W.WriteElementString('maml', 'name', $nsMaml, $i.Type); $W.WriteEndElement()
        Write-Description $W $i.Description
        $W.WriteEndElement()
    }
    $W.WriteEndElement()

    $W.WriteStartElement('command', 'returnValues', $nsCommand)
    foreach ($o in $Doc.Outputs) {
        $W.WriteStartElement('command', 'returnValue', $nsCommand)
        $W.WriteStartElement('dev', 'type', $nsDev); $W.WriteElementString('maml', 'name', $nsMaml, $o.Type); $W.WriteEndElement()
        Write-Description $W $o.Description
        $W.WriteEndElement()
    }
    $W.WriteEndElement()

    $W.WriteStartElement('maml', 'alertSet', $nsMaml)
    $W.WriteStartElement('maml', 'alert', $nsMaml)
    Write-Para $W $Doc.Notes
    $W.WriteEndElement()
    $W.WriteEndElement()

    $W.WriteStartElement('command', 'examples', $nsCommand)
    foreach ($e in $Doc.Examples) {
        $W.WriteStartElement('command', 'example', $nsCommand)
        $W.WriteElementString('maml', 'title', $nsMaml, "-------------------------- $($e.Title) --------------------------")
        $W.WriteElementString('dev', 'code', $nsDev, $e.Code)
        $W.WriteStartElement('dev', 'remarks', $nsDev)
        Write-Para $W $e.Remarks
        $W.WriteEndElement()
        $W.WriteEndElement()
    }
    $W.WriteEndElement()

    $W.WriteStartElement('command', 'relatedLinks', $nsCommand)
    foreach ($l in $Doc.Links) {
        $W.WriteStartElement('maml', 'navigationLink', $nsMaml)
        $W.WriteElementString('maml', 'linkText', $nsMaml, $l.Text)
        $W.WriteElementString('maml', 'uri', $nsMaml, $l.Uri)
        $W.WriteEndElement()
    }
    $W.WriteEndElement()

    $W.WriteEndElement()
}

# ---------------------------------------------------------------------------------------------- about topic

function ConvertTo-AboutText {
    <#
    about_*.md -> about_*.help.txt: '# about_X' -> TOPIC; '## HEADING' -> an upper-case heading at column 0;
    '### Sub' -> a sub-heading indented 4; paragraphs wrapped at 80 columns and indented 4; code indented 8.
    #>
    param([string] $Path)
    $lines = @(Get-Content -LiteralPath $Path)
    $out = [System.Collections.Generic.List[string]]::new()
    $title = ($lines | Where-Object { $_ -match '^# ' } | Select-Object -First 1)
    if (-not $title) { throw "$Path has no '# about_Name' title." }
    $out.Add('TOPIC'); $out.Add('    ' + $title.Substring(2).Trim()); $out.Add('')
    $body = [System.Collections.Generic.List[string]]::new()
    $flushBody = {
        if ($body.Count -gt 0) {
            foreach ($p in (ConvertTo-Paragraph $body)) {
                if ($p.Contains("`n")) { foreach ($c in $p -split "`n") { $out.Add(('        ' + $c).TrimEnd()) } }
                else {
                    $indent = ($p -match '^([*-]|\d+\.)\s') ? '      ' : '    '
                    $line = '    '
                    foreach ($word in ($p -split '\s+')) {
                        if ($line.Length + $word.Length + 1 -gt 80 -and $line.Trim()) { $out.Add($line.TrimEnd()); $line = $indent }
                        $line += ($line.Trim() ? ' ' : '') + $word
                    }
                    $out.Add($line.TrimEnd())
                }
                $out.Add('')
            }
            $body.Clear()
        }
    }
    $inFence = $false
    foreach ($line in $lines) {
        if ($line -match '^\s*```') { $inFence = -not $inFence; $body.Add($line); continue }
        if ($inFence) { $body.Add($line); continue }
        if ($line -match '^# ') { continue }
        if ($line -match '^## (.+)$') { & $flushBody; $out.Add($Matches[1].Trim().ToUpperInvariant()); continue }
        if ($line -match '^### (.+)$') { & $flushBody; $out.Add('  ' + $Matches[1].Trim().ToUpperInvariant()); continue }
        $body.Add($line)
    }
    & $flushBody
    return ($out -join [Environment]::NewLine).TrimEnd() + [Environment]::NewLine
}

# ---------------------------------------------------------------------------------------------- main

if (-not $ModulePath) {
    $ModulePath = Get-ChildItem -LiteralPath (Split-Path $OutputPath -Parent) -Filter '*.psd1' -ErrorAction SilentlyContinue | Select-Object -First 1 -ExpandProperty FullName
}
$metadata = @{}
if ($ModulePath) { $metadata = Get-CommandMetadata -Manifest $ModulePath }
else { Write-Warning 'No built module found: the MAML gets no syntax and no parameter attributes.' }

$docs = @(Get-ChildItem -LiteralPath $MarkdownPath -Filter '*-*.md' | Sort-Object Name | ForEach-Object { Read-CommandMarkdown $_.FullName })
foreach ($name in $metadata.Keys) {
    if ($name -notin $docs.Name) { Write-Warning "Cmdlet $name has no help markdown ($name.md)." }
}

$settings = [System.Xml.XmlWriterSettings]::new()
$settings.Indent = $true
$settings.Encoding = [System.Text.UTF8Encoding]::new($false)
$mamlPath = Join-Path $OutputPath 'HubDr.Cmdlets.dll-Help.xml'
$w = [System.Xml.XmlWriter]::Create($mamlPath, $settings)
try {
    $w.WriteStartDocument()
    $w.WriteStartElement('helpItems', 'http://msh')
    $w.WriteAttributeString('schema', 'maml')
    foreach ($d in $docs) {
        $meta = $metadata[$d.Name]
        if ($metadata.Count -gt 0 -and $null -eq $meta) { throw "$($d.Name).md documents a cmdlet the module does not export." }
        Write-Command -W $w -Doc $d -Meta $meta
    }
    $w.WriteEndElement()
    $w.WriteEndDocument()
}
finally { $w.Dispose() }

$abouts = @(Get-ChildItem -LiteralPath $MarkdownPath -Filter 'about_*.md')
foreach ($a in $abouts) {
    $text = ConvertTo-AboutText $a.FullName
    [IO.File]::WriteAllText((Join-Path $OutputPath ($a.BaseName + '.help.txt')), $text, [System.Text.UTF8Encoding]::new($false))
}
Write-Verbose "Help: $($docs.Count) cmdlet(s) -> $mamlPath; $($abouts.Count) about topic(s)."
