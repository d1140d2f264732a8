using System.Text;

namespace HubDr.Engine.Databases.Sqlite;

/// <summary>
/// Splits a streamed SQL script into complete statements without buffering the whole script: semicolons inside
/// '...' strings, "..." / [...] / `...` identifiers and comments do not end a statement, and CREATE TRIGGER bodies
/// (BEGIN ... END;) are kept whole (checked with sqlite3_complete).
/// </summary>
internal sealed class SqlScriptSplitter
{
    private enum State { Normal, Single, Double, Bracket, Backtick, Dash, Slash, LineComment, BlockComment, BlockStar }

    private readonly TextReader _reader;
    private readonly char[] _buffer = new char[64 * 1024];
    private readonly StringBuilder _current = new();
    private int _pos;
    private int _len;
    private State _state = State.Normal;
    private bool _eof;

    public SqlScriptSplitter(TextReader reader) => _reader = reader;

    /// <summary>Text left after the last complete statement (non-whitespace means the script ended mid-statement).</summary>
    public string Remainder => _current.ToString();

    /// <summary>The next complete statement including its ';', or null at the end of the script.</summary>
    public string? Next()
    {
        while (true)
        {
            if (_pos >= _len)
            {
                if (_eof) return null;
                _len = _reader.Read(_buffer, 0, _buffer.Length);
                _pos = 0;
                if (_len <= 0) { _eof = true; _len = 0; return null; }
            }

            // Skip whitespace between statements.
            if (_current.Length == 0 && _state == State.Normal)
            {
                while (_pos < _len && char.IsWhiteSpace(_buffer[_pos])) _pos++;
                if (_pos >= _len) continue;
            }

            int start = _pos;
            while (_pos < _len)
            {
                char c = _buffer[_pos++];
                switch (_state)
                {
                    case State.Normal:
                        switch (c)
                        {
                            case '\'': _state = State.Single; break;
                            case '"': _state = State.Double; break;
                            case '[': _state = State.Bracket; break;
                            case '`': _state = State.Backtick; break;
                            case '-': _state = State.Dash; break;
                            case '/': _state = State.Slash; break;
                            case ';':
                                _current.Append(_buffer, start, _pos - start);
                                start = _pos;
                                string stmt = _current.ToString();
                                if (MayBeIncompleteTrigger(stmt)) continue;
                                _current.Clear();
                                return stmt;
                        }
                        break;
                    case State.Dash:
                        if (c == '-') _state = State.LineComment;
                        else { _state = State.Normal; _pos--; } // re-read c as normal text (it is in this buffer)
                        break;
                    case State.Slash:
                        if (c == '*') _state = State.BlockComment;
                        else { _state = State.Normal; _pos--; }
                        break;
                    case State.Single: if (c == '\'') _state = State.Normal; break; // '' re-enters Single at once
                    case State.Double: if (c == '"') _state = State.Normal; break;
                    case State.Bracket: if (c == ']') _state = State.Normal; break;
                    case State.Backtick: if (c == '`') _state = State.Normal; break;
                    case State.LineComment: if (c == '\n') _state = State.Normal; break;
                    case State.BlockComment: if (c == '*') _state = State.BlockStar; break;
                    case State.BlockStar:
                        if (c == '/') _state = State.Normal;
                        else if (c != '*') _state = State.BlockComment;
                        break;
                }
            }
            _current.Append(_buffer, start, _pos - start);
        }
    }

    private static bool MayBeIncompleteTrigger(string stmt)
    {
        if (stmt.IndexOf("TRIGGER", StringComparison.OrdinalIgnoreCase) < 0) return false;
        return SQLitePCL.raw.sqlite3_complete(stmt) == 0;
    }
}
