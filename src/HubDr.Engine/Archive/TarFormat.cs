using System.Buffers.Text;
using System.Text;

namespace HubDr.Engine.Archive;

/// <summary>Low-level ustar/pax header helpers (512-byte blocks).</summary>
internal static class TarFormat
{
    public const int BlockSize = 512;

    public const byte TypeRegular = (byte)'0';
    public const byte TypeRegularOld = 0;
    public const byte TypeDirectory = (byte)'5';
    public const byte TypePaxLocal = (byte)'x';
    public const byte TypePaxGlobal = (byte)'g';
    public const byte TypeGnuLongName = (byte)'L';

    /// <summary>Largest size the 11-digit octal size field can hold (8 GiB - 1).</summary>
    public const long MaxOctalSize = 0x1_FFFF_FFFFL;

    public static int Padding(long size) => (int)((BlockSize - (size % BlockSize)) % BlockSize);

    /// <summary>Writes the header block(s) for one regular file; a pax extended header first when the name does not fit ustar.</summary>
    public static void WriteFileHeader(Stream output, string name, long size, long mtime, byte[] scratch)
    {
        byte[] nameBytes = Encoding.UTF8.GetBytes(name);
        bool ascii = nameBytes.Length == name.Length;
        bool needPax = !ascii || nameBytes.Length > 100 || size > MaxOctalSize;
        if (needPax)
        {
            var pax = new StringBuilder();
            AppendPaxRecord(pax, "path", name);
            if (size > MaxOctalSize) AppendPaxRecord(pax, "size", size.ToString(System.Globalization.CultureInfo.InvariantCulture));
            byte[] paxBytes = Encoding.UTF8.GetBytes(pax.ToString());
            string baseName = Path.GetFileName(name);
            string paxName = "PaxHeaders/" + AsciiTruncate(baseName, 80);
            WriteHeaderBlock(output, Encoding.ASCII.GetBytes(paxName), paxBytes.Length, mtime, TypePaxLocal, scratch);
            output.Write(paxBytes);
            WriteZeros(output, Padding(paxBytes.Length), scratch);
            nameBytes = Encoding.ASCII.GetBytes(AsciiTruncate(name, 100));
        }
        WriteHeaderBlock(output, nameBytes, Math.Min(size, MaxOctalSize), mtime, TypeRegular, scratch);
    }

    private static string AsciiTruncate(string s, int max)
    {
        var sb = new StringBuilder(Math.Min(s.Length, max));
        foreach (char c in s)
        {
            if (sb.Length >= max) break;
            sb.Append(c is >= (char)0x20 and < (char)0x7f ? c : '_');
        }
        return sb.ToString();
    }

    private static void AppendPaxRecord(StringBuilder sb, string key, string value)
    {
        // "<len> <key>=<value>\n" where len counts the whole record including its own digits.
        int body = Encoding.UTF8.GetByteCount(key) + Encoding.UTF8.GetByteCount(value) + 3; // ' ', '=', '\n'
        int len = body + 1;
        while (len.ToString(System.Globalization.CultureInfo.InvariantCulture).Length + body != len) len++;
        sb.Append(len).Append(' ').Append(key).Append('=').Append(value).Append('\n');
    }

    private static void WriteHeaderBlock(Stream output, byte[] name, long size, long mtime, byte type, byte[] scratch)
    {
        Span<byte> h = scratch.AsSpan(0, BlockSize);
        h.Clear();
        name.AsSpan(0, Math.Min(100, name.Length)).CopyTo(h);
        WriteOctal(h.Slice(100, 8), 0x1A4);        // mode 0644
        WriteOctal(h.Slice(108, 8), 0);            // uid
        WriteOctal(h.Slice(116, 8), 0);            // gid
        WriteOctal(h.Slice(124, 12), size);
        WriteOctal(h.Slice(136, 12), Math.Max(0, mtime));
        h[156] = type;
        "ustar\0"u8.CopyTo(h.Slice(257, 6));
        "00"u8.CopyTo(h.Slice(263, 2));
        "root"u8.CopyTo(h.Slice(265, 32));         // uname
        "root"u8.CopyTo(h.Slice(297, 32));         // gname
        WriteOctal(h.Slice(329, 8), 0);            // devmajor
        WriteOctal(h.Slice(337, 8), 0);            // devminor
        h.Slice(148, 8).Fill((byte)' ');
        int sum = 0;
        foreach (byte b in h) sum += b;
        WriteOctal(h.Slice(148, 7), sum);          // 6 digits + NUL, then the space already there
        h[155] = (byte)' ';
        output.Write(h);
    }

    /// <summary>Zero-padded octal with a trailing NUL, filling the field.</summary>
    private static void WriteOctal(Span<byte> field, long value)
    {
        int digits = field.Length - 1;
        field[digits] = 0;
        for (int i = digits - 1; i >= 0; i--)
        {
            field[i] = (byte)('0' + (value & 7));
            value >>= 3;
        }
        if (value != 0) throw new ArgumentOutOfRangeException(nameof(value), "Value does not fit the tar header field.");
    }

    public static void WriteZeros(Stream output, int count, byte[] scratch)
    {
        while (count > 0)
        {
            int n = Math.Min(count, BlockSize);
            scratch.AsSpan(0, n).Clear();
            output.Write(scratch, 0, n);
            count -= n;
        }
    }

    // ---- reading ----

    public static bool IsZeroBlock(ReadOnlySpan<byte> block) => block.IndexOfAnyExcept((byte)0) < 0;

    public static bool ChecksumOk(ReadOnlySpan<byte> h)
    {
        if (!TryParseNumber(h.Slice(148, 8), out long stored)) return false;
        long unsignedSum = 0, signedSum = 0;
        for (int i = 0; i < BlockSize; i++)
        {
            byte b = (i >= 148 && i < 156) ? (byte)' ' : h[i];
            unsignedSum += b;
            signedSum += (sbyte)b;
        }
        return stored == unsignedSum || stored == signedSum;
    }

    /// <summary>Octal (NUL/space terminated) or GNU base-256 numbers.</summary>
    public static bool TryParseNumber(ReadOnlySpan<byte> field, out long value)
    {
        value = 0;
        if (field.Length > 0 && (field[0] & 0x80) != 0)
        {
            if ((field[0] & 0x40) != 0) return false; // negative
            long v = field[0] & 0x3F;
            for (int i = 1; i < field.Length; i++)
            {
                if (v > (long.MaxValue >> 8)) return false;
                v = (v << 8) | field[i];
            }
            value = v;
            return true;
        }
        int p = 0;
        while (p < field.Length && (field[p] == ' ' || field[p] == 0)) p++;
        if (p == field.Length) return true; // empty = 0
        long r = 0;
        for (; p < field.Length; p++)
        {
            byte c = field[p];
            if (c == 0 || c == ' ') break;
            if (c < '0' || c > '7') return false;
            if (r > (long.MaxValue >> 3)) return false;
            r = (r << 3) | (long)(c - '0');
        }
        value = r;
        return true;
    }

    public static string ParseString(ReadOnlySpan<byte> field)
    {
        int end = field.IndexOf((byte)0);
        if (end >= 0) field = field[..end];
        return Encoding.UTF8.GetString(field);
    }

    /// <summary>Parses pax records; returns key/value pairs.</summary>
    public static Dictionary<string, string> ParsePax(ReadOnlySpan<byte> data)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        int pos = 0;
        while (pos < data.Length)
        {
            if (data[pos] == 0) break;
            int space = data[pos..].IndexOf((byte)' ');
            if (space <= 0) throw Corrupt("a pax header record has no length");
            if (!Utf8Parser.TryParse(data.Slice(pos, space), out int len, out int consumed) || consumed != space || len <= space + 1 || pos + len > data.Length)
                throw Corrupt("a pax header record has an invalid length");
            ReadOnlySpan<byte> rec = data.Slice(pos + space + 1, len - space - 1);
            if (rec[^1] != (byte)'\n') throw Corrupt("a pax header record is not newline-terminated");
            rec = rec[..^1];
            int eq = rec.IndexOf((byte)'=');
            if (eq <= 0) throw Corrupt("a pax header record has no key");
            result[Encoding.UTF8.GetString(rec[..eq])] = Encoding.UTF8.GetString(rec[(eq + 1)..]);
            pos += len;
        }
        return result;
    }

    public static HubDrException Corrupt(string what) =>
        new("ArchiveCorrupt", HubErrorCategory.InvalidData,
            $"The backup archive is corrupt: {what}. The archive cannot be trusted; restore from another backup.");

    public static HubDrException Truncated() =>
        new("ArchiveTruncated", HubErrorCategory.InvalidData,
            "The backup archive ends early (truncated tar stream). The upload or download was incomplete; fetch it again or restore from another backup.");
}
