using System.Runtime.InteropServices;
using System.Security;

namespace HubDr.Cmdlets.Infrastructure;

internal static class Secrets
{
    /// <summary>Copies a SecureString into a char[] the caller must clear with <see cref="Clear"/>.</summary>
    public static char[] ToChars(SecureString s)
    {
        var ptr = Marshal.SecureStringToGlobalAllocUnicode(s);
        try
        {
            var chars = new char[s.Length];
            Marshal.Copy(ptr, chars, 0, chars.Length);
            return chars;
        }
        finally
        {
            Marshal.ZeroFreeGlobalAllocUnicode(ptr);
        }
    }

    public static void Clear(char[]? chars)
    {
        if (chars is not null)
        {
            Array.Clear(chars);
        }
    }

    public static SecureString FromString(string s)
    {
        var ss = new SecureString();
        foreach (var c in s)
        {
            ss.AppendChar(c);
        }

        ss.MakeReadOnly();
        return ss;
    }

    public static string ToPlain(SecureString s) => new(ToChars(s));
}
