namespace WalBridge.Connector.Cli;

/// <summary>A command-line usage error; printed with the command's usage, exit code 2.</summary>
public sealed class UsageException : Exception
{
    public UsageException(string message) : base(message) { }
    public UsageException(string message, Exception inner) : base(message, inner) { }
    public UsageException() { }
}

/// <summary>
/// Minimal, strict option parsing: <c>--name value</c>, <c>--name=value</c> and flags. Unknown
/// options are errors.
/// </summary>
internal sealed class CliArguments
{
    private readonly Dictionary<string, List<string>> _values = new(StringComparer.Ordinal);
    private readonly HashSet<string> _flags = new(StringComparer.Ordinal);

    public CliArguments(IReadOnlyList<string> args, IReadOnlyCollection<string> valueOptions, IReadOnlyCollection<string> flagOptions)
    {
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            if (!arg.StartsWith("--", StringComparison.Ordinal))
            {
                throw new UsageException($"Unexpected argument '{arg}'.");
            }

            var name = arg;
            string? value = null;
            var eq = arg.IndexOf('=', StringComparison.Ordinal);
            if (eq > 0)
            {
                name = arg[..eq];
                value = arg[(eq + 1)..];
            }
            if (flagOptions.Contains(name))
            {
                if (value is not null)
                {
                    throw new UsageException($"Option '{name}' takes no value.");
                }

                _flags.Add(name);
                continue;
            }
            if (!valueOptions.Contains(name))
            {
                throw new UsageException($"Unknown option '{name}'.");
            }

            if (value is null)
            {
                if (i + 1 >= args.Count)
                {
                    throw new UsageException($"Option '{name}' needs a value.");
                }

                value = args[++i];
            }
            if (!_values.TryGetValue(name, out var list))
            {
                _values[name] = list = [];
            }

            list.Add(value);
        }
    }

    public bool Flag(string name) => _flags.Contains(name);

    public string? Value(string name) => _values.TryGetValue(name, out var list) ? list[^1] : null;

    public IReadOnlyList<string> Values(string name) => _values.TryGetValue(name, out var list) ? list : [];

    public string Required(string name) => Value(name) ?? throw new UsageException($"Option '{name}' is required.");

    public int Int(string name, int fallback, int min, int max)
    {
        var text = Value(name);
        if (text is null)
        {
            return fallback;
        }

        if (!int.TryParse(text, System.Globalization.CultureInfo.InvariantCulture, out var n) || n < min || n > max)
        {
            throw new UsageException($"Option '{name}' must be a whole number from {min} to {max}, found '{text}'.");
        }

        return n;
    }
}
