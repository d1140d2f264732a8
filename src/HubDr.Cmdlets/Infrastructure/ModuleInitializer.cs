using System.Management.Automation;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.Loader;

namespace HubDr.Cmdlets.Infrastructure;

/// <summary>
/// Assembly-load isolation (the PowerShellEditorServices pattern). HubDr.Cmdlets.dll is loaded by PowerShell into the
/// default AssemblyLoadContext; HubDr.Engine.dll and every NuGet dependency (BouncyCastle, AWSSDK, Azure.Core, Npgsql,
/// …) live in the module's "dependencies" folder and are loaded into a private <see cref="HubDrLoadContext"/>.
/// The only bridge is the default context's Resolving event for "HubDr.Engine" itself, so a module that loaded
/// another BouncyCastle/Azure.Core/AWSSDK version into the default context before us neither sees ours nor breaks us.
/// Registered from a C# module initializer so it is in place before any engine type is touched.
/// </summary>
public static class HubDrAssemblyResolver
{
    private const string EngineAssemblyName = "HubDr.Engine";
    private static readonly object Gate = new();
    private static HubDrLoadContext? _context;

    internal static string DependencyFolder { get; } = Path.Combine(
        Path.GetDirectoryName(typeof(HubDrAssemblyResolver).Assembly.Location) ?? AppContext.BaseDirectory, "dependencies");

#pragma warning disable CA2255 // A module initializer is exactly right here: the resolver must exist before any engine type is touched.
    [ModuleInitializer]
    internal static void Register()
    {
        AssemblyLoadContext.Default.Resolving += ResolveEngine;
    }
#pragma warning restore CA2255

    /// <summary>The private context (for diagnostics and the isolation test).</summary>
    public static AssemblyLoadContext? Context => _context;

    private static Assembly? ResolveEngine(AssemblyLoadContext defaultContext, AssemblyName name)
    {
        if (!string.Equals(name.Name, EngineAssemblyName, StringComparison.Ordinal))
        {
            return null;
        }

        lock (Gate)
        {
            var enginePath = Path.Combine(DependencyFolder, EngineAssemblyName + ".dll");
            if (!File.Exists(enginePath))
            {
                return null;
            }

            _context ??= new HubDrLoadContext(enginePath);
            return _context.LoadFromAssemblyName(name);
        }
    }
}

/// <summary>Loads the engine and its dependencies from dependencies/ using the engine's deps.json (managed and native).</summary>
internal sealed class HubDrLoadContext : AssemblyLoadContext
{
    private readonly AssemblyDependencyResolver _resolver;
    private readonly string _folder;

    public HubDrLoadContext(string enginePath)
        : base("HubDr", isCollectible: false)
    {
        _resolver = new AssemblyDependencyResolver(enginePath);
        _folder = Path.GetDirectoryName(enginePath)!;
    }

    protected override Assembly? Load(AssemblyName assemblyName)
    {
        // Never load a second copy of PowerShell or the framework: those come from the default context.
        if (assemblyName.Name is "System.Management.Automation" or "netstandard")
        {
            return null;
        }

        var path = _resolver.ResolveAssemblyToPath(assemblyName);
        if (path is null)
        {
            var candidate = Path.Combine(_folder, assemblyName.Name + ".dll");
            path = File.Exists(candidate) ? candidate : null;
        }

        return path is null ? null : LoadFromAssemblyPath(path);
    }

    protected override IntPtr LoadUnmanagedDll(string unmanagedDllName)
    {
        var path = _resolver.ResolveUnmanagedDllToPath(unmanagedDllName);
        return path is null ? IntPtr.Zero : LoadUnmanagedDllFromPath(path);
    }
}

/// <summary>Also hooks PowerShell's own import callback (belt and braces; the module initializer already ran).</summary>
public sealed class HubDrModuleInitializer : IModuleAssemblyInitializer
{
    public void OnImport()
    {
        _ = HubDrAssemblyResolver.Context;
    }
}
