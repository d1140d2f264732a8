#requires -Version 7.4
# Operator-facing help: every exported cmdlet has real MAML help (synopsis, description, examples, every parameter),
# about_HubDr is found, and the cmdlet metadata follows PowerShell's conventions (OutputType, ShouldProcess, verbs).
BeforeDiscovery {
    Import-Module $env:HUBDR_MODULE_PATH -Force
    $script:cmdlets = @(Get-Command -Module HubDr -CommandType Cmdlet | ForEach-Object { @{ Name = $_.Name; Verb = $_.Verb } })
}

BeforeAll {
    Import-Module $env:HUBDR_MODULE_PATH -Force
    $script:common = [System.Management.Automation.Cmdlet]::CommonParameters + [System.Management.Automation.Cmdlet]::OptionalCommonParameters
    function script:Get-Text($Node) {
        # MAML description/remarks nodes are arrays of @{ Text = ... } paragraphs.
        (@($Node) | ForEach-Object { if ($_ -is [string]) { $_ } else { $_.Text } }) -join "`n"
    }
}

Describe 'The module' {
    It 'exports the cmdlets the manifest lists' {
        $manifest = Import-PowerShellDataFile $env:HUBDR_MODULE_PATH
        @(Get-Command -Module HubDr -CommandType Cmdlet).Name | Sort-Object | Should -Be ($manifest.CmdletsToExport | Sort-Object)
    }

    It 'ships MAML help beside the cmdlet assembly' {
        $base = (Get-Module HubDr).ModuleBase
        $maml = Join-Path $base 'en-US/HubDr.Cmdlets.dll-Help.xml'
        Test-Path $maml | Should -BeTrue
        { [xml](Get-Content $maml -Raw) } | Should -Not -Throw
        ([xml](Get-Content $maml -Raw)).helpItems.schema | Should -Be 'maml'
    }

    It 'has an about_HubDr topic' {
        $about = Get-Help about_HubDr
        $about | Should -Not -BeNullOrEmpty
        ($about | Out-String) | Should -Match 'LONG DESCRIPTION'
        ($about | Out-String) | Should -Match 'HUBDR_KEY_PASSPHRASE'
    }
}

Describe 'Help for <Name>' -ForEach $cmdlets {
    BeforeAll {
        $script:help = Get-Help $Name -Full
        $script:command = Get-Command $Name
        $script:parameters = @($command.Parameters.Values | Where-Object { $_.Name -notin $common })
    }

    It 'has a written synopsis (not the generated syntax placeholder)' {
        $synopsis = "$($help.Synopsis)".Trim()
        $synopsis | Should -Not -BeNullOrEmpty
        $synopsis | Should -Not -BeLike "$Name *"     # auto-generated help puts the syntax there
        $synopsis | Should -Not -Match '\{\{.*\}\}'  # platyPS-style placeholder
        $synopsis.Length | Should -BeGreaterThan 20
    }

    It 'has a description' {
        $text = Get-Text $help.description
        $text | Should -Not -BeNullOrEmpty
        $text | Should -Not -Match '\{\{.*\}\}'
        $text.Length | Should -BeGreaterThan 100
    }

    It 'has at least two examples, each with code and an explanation' {
        $examples = @($help.examples.example)
        $examples.Count | Should -BeGreaterOrEqual 2
        foreach ($e in $examples) {
            "$($e.code)".Trim() | Should -Not -BeNullOrEmpty -Because $e.title
            "$($e.code)" | Should -Match $Name -Because "$($e.title) should use the cmdlet"
            (Get-Text $e.remarks).Trim() | Should -Not -BeNullOrEmpty -Because $e.title
        }
    }

    It 'has examples that parse and call HubDr cmdlets only with parameters they have' {
        foreach ($e in @($help.examples.example)) {
            $errors = $null
            $ast = [System.Management.Automation.Language.Parser]::ParseInput("$($e.code)", [ref] $null, [ref] $errors)
            $errors | Should -BeNullOrEmpty -Because "$($e.title) must be valid PowerShell"
            foreach ($c in $ast.FindAll({ param($n) $n -is [System.Management.Automation.Language.CommandAst] }, $true)) {
                $target = Get-Command -Module HubDr -Name $c.GetCommandName() -ErrorAction SilentlyContinue
                if (-not $target) { continue }
                foreach ($p in $c.CommandElements | Where-Object { $_ -is [System.Management.Automation.Language.CommandParameterAst] }) {
                    $names = @($target.Parameters.Values | ForEach-Object { $_.Name; $_.Aliases })
                    @($names | Where-Object { $_ -like "$($p.ParameterName)*" }).Count | Should -BeGreaterThan 0 -Because "$($e.title): $($target.Name) has no -$($p.ParameterName)"
                }
            }
        }
    }

    It 'describes every parameter' {
        $missing = foreach ($p in $parameters) {
            $ph = Get-Help $Name -Parameter $p.Name -ErrorAction SilentlyContinue
            if (-not $ph -or -not (Get-Text $ph.description).Trim()) { $p.Name }
        }
        $missing | Should -BeNullOrEmpty -Because 'every parameter needs a description in docs/help'
    }

    It 'documents no parameter the cmdlet lacks, and states the right type' {
        foreach ($ph in @($help.parameters.parameter)) {
            $command.Parameters.ContainsKey($ph.name) | Should -BeTrue -Because "help documents -$($ph.name)"
            $t = [Nullable]::GetUnderlyingType($command.Parameters[$ph.name].ParameterType) ?? $command.Parameters[$ph.name].ParameterType
            $ph.type.name | Should -Be $t.FullName -Because "-$($ph.name)"
        }
    }

    It 'shows a syntax block for every parameter set' {
        @($help.syntax.syntaxItem).Count | Should -Be @($command.ParameterSets).Count
    }

    It 'names its output types' {
        $command.OutputType | Should -Not -BeNullOrEmpty
        @($help.returnValues.returnValue).Count | Should -BeGreaterOrEqual 1
        foreach ($t in $command.OutputType) {
            ($help.returnValues.returnValue.type.name -join ' ') | Should -Match ([regex]::Escape($t.Type.Name))
        }
    }

    It 'uses an approved verb' {
        (Get-Verb).Verb | Should -Contain $Verb
    }

    It 'supports -WhatIf/-Confirm when it changes state' {
        if ($Verb -in 'New', 'Restore', 'Remove', 'Invoke', 'Set', 'Clear', 'Reset', 'Start', 'Stop', 'Initialize') {
            $command.Parameters.ContainsKey('WhatIf') | Should -BeTrue
            $command.Parameters.ContainsKey('Confirm') | Should -BeTrue
        }
        else {
            $command.Parameters.ContainsKey('WhatIf') | Should -BeFalse -Because 'a read-only cmdlet should not pretend to change anything'
        }
    }

    It 'links related commands that exist' {
        foreach ($link in @($help.relatedLinks.navigationLink)) {
            if ($link.linkText -match '^\w+-\w+$') { Get-Command $link.linkText -ErrorAction SilentlyContinue | Should -Not -BeNullOrEmpty -Because $link.linkText }
        }
    }
}
