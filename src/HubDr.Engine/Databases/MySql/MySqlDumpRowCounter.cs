using System.Text;

namespace HubDr.Engine.Databases.MySql;

/// <summary>
/// Counts rows in a mariadb-dump / mysqldump SQL stream as it passes by, so row counts are exactly the rows
/// in the dump. Understands the dump tool's layout: a base table starts with "CREATE TABLE `name`" at the
/// beginning of a line, its data is one or more extended "INSERT INTO `name` VALUES (...),(...);" lines.
/// Tuples are counted at parenthesis depth 0 outside single-quoted strings (backslash escapes and doubled
/// quotes handled). Lines inside "DELIMITER ;;" blocks (triggers, routines, events) are ignored.
/// Constant memory; feed it chunk by chunk.
/// </summary>
public sealed class MySqlDumpRowCounter
{
    private static readonly byte[][] Heads =
    {
        "INSERT INTO `"u8.ToArray(),
        "CREATE TABLE `"u8.ToArray(),
        "DELIMITER ;;"u8.ToArray(),
        "DELIMITER ;\n"u8.ToArray(),
        "DELIMITER ;\r\n"u8.ToArray(), // a dump written on (or converted for) Windows
    };

    private static readonly byte[] ValuesMarker = " VALUES"u8.ToArray(); // then " (" or "\n(" depending on the dump version

    private enum State
    {
        Head,
        SkipLine,
        Name,
        AfterName,
        Values,
    }

    private readonly Dictionary<string, long> _counts = new(StringComparer.Ordinal);
    private readonly byte[] _head = new byte[16];
    private readonly List<byte> _name = new();
    private State _state = State.Head;
    private int _headLen;
    private bool _inDelimiterBlock;
    private bool _nameIsInsert;
    private bool _pendingTick;
    private int _valuesMatched;
    private string _currentTable = "";
    private bool _inString;
    private bool _escape;
    private int _depth;

    /// <summary>Rows per table seen so far (tables created in the dump appear with 0 until their inserts).</summary>
    public IReadOnlyDictionary<string, long> Counts => _counts;

    private static readonly System.Buffers.SearchValues<byte> ValueSpecials = System.Buffers.SearchValues.Create("'();"u8);
    private static readonly System.Buffers.SearchValues<byte> StringSpecials = System.Buffers.SearchValues.Create("'\\"u8);

    public void Feed(ReadOnlySpan<byte> data)
    {
        // Same state machine as Step, with vectorised skips over the long runs that cannot change the state:
        // the rest of a skipped line, string contents, and row data between quotes and parentheses.
        while (!data.IsEmpty)
        {
            if (_state == State.SkipLine)
            {
                var nl = data.IndexOf((byte)'\n');
                if (nl < 0)
                {
                    return;
                }

                _state = State.Head;
                _headLen = 0;
                data = data[(nl + 1)..];
                continue;
            }

            if (_state == State.Values && !_escape)
            {
                var next = _inString ? data.IndexOfAny(StringSpecials) : data.IndexOfAny(ValueSpecials);
                if (next < 0)
                {
                    return;
                }

                data = data[next..];
            }

            Step(data[0]);
            data = data[1..];
        }
    }

    private void Step(byte b)
    {
        switch (_state)
        {
            case State.Head:
                StepHead(b);
                break;
            case State.SkipLine:
                if (b == (byte)'\n')
                {
                    _state = State.Head;
                    _headLen = 0;
                }

                break;
            case State.Name:
                if (_pendingTick)
                {
                    _pendingTick = false;
                    if (b == (byte)'`')
                    {
                        _name.Add(b); // doubled backtick inside the identifier
                        break;
                    }

                    _currentTable = Encoding.UTF8.GetString(_name.ToArray());
                    if (!_counts.ContainsKey(_currentTable))
                    {
                        _counts[_currentTable] = 0;
                    }

                    if (_nameIsInsert)
                    {
                        _state = State.AfterName;
                        _valuesMatched = 0;
                        Step(b);
                    }
                    else
                    {
                        _state = State.SkipLine;
                        Step(b);
                    }

                    break;
                }

                if (b == (byte)'`')
                {
                    _pendingTick = true;
                }
                else
                {
                    _name.Add(b);
                }

                break;
            case State.AfterName:
                if (b == ValuesMarker[_valuesMatched])
                {
                    _valuesMatched++;
                    if (_valuesMatched == ValuesMarker.Length)
                    {
                        _state = State.Values;
                        _inString = false;
                        _escape = false;
                        _depth = 0;
                    }
                }
                else
                {
                    // unexpected shape (e.g. a column list): not ours to count
                    _state = State.SkipLine;
                    Step(b);
                }

                break;
            case State.Values:
                StepValues(b);
                break;
        }
    }

    private void StepHead(byte b)
    {
        if (_headLen < _head.Length)
        {
            _head[_headLen++] = b;
        }

        var prefixOfAny = false;
        for (var i = 0; i < Heads.Length; i++)
        {
            var h = Heads[i];
            if (_headLen > h.Length || !h.AsSpan(0, _headLen).SequenceEqual(_head.AsSpan(0, _headLen)))
            {
                continue;
            }

            if (_headLen == h.Length)
            {
                switch (i)
                {
                    case 0:
                    case 1:
                        if (_inDelimiterBlock)
                        {
                            _state = State.SkipLine;
                        }
                        else
                        {
                            _state = State.Name;
                            _nameIsInsert = i == 0;
                            _name.Clear();
                            _pendingTick = false;
                        }

                        return;
                    case 2:
                        _inDelimiterBlock = true;
                        _state = State.SkipLine;
                        return;
                    case 3:
                    case 4:
                        _inDelimiterBlock = false;
                        _headLen = 0; // the newline was consumed: next line starts now
                        return;
                }
            }

            prefixOfAny = true;
        }

        if (!prefixOfAny)
        {
            if (b == (byte)'\n')
            {
                _headLen = 0;
            }
            else
            {
                _state = State.SkipLine;
            }
        }
    }

    private void StepValues(byte b)
    {
        if (_inString)
        {
            if (_escape)
            {
                _escape = false;
            }
            else if (b == (byte)'\\')
            {
                _escape = true;
            }
            else if (b == (byte)'\'')
            {
                _inString = false; // a doubled '' simply re-enters the string on the next byte
            }

            return;
        }

        switch (b)
        {
            case (byte)'\'':
                _inString = true;
                break;
            case (byte)'(':
                if (_depth == 0)
                {
                    _counts[_currentTable] = _counts.GetValueOrDefault(_currentTable) + 1;
                }

                _depth++;
                break;
            case (byte)')':
                if (_depth > 0)
                {
                    _depth--;
                }

                break;
            case (byte)';':
                if (_depth == 0)
                {
                    _state = State.SkipLine;
                }

                break;
        }
    }
}
