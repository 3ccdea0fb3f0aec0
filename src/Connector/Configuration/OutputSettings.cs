using System.Globalization;
using System.Text.RegularExpressions;

namespace WalBridge.Connector.Configuration;

/// <summary>A record format the connector can write (<c>output.formats</c>).</summary>
public enum OutputFormat
{
    /// <summary>WalBridge's Arrow IPC streams, one record per source transaction, table and chunk (docs/format.md).</summary>
    Arrow,
    /// <summary>Debezium's change event envelope, one record per row change, Kafka Connect JsonConverter encoding.</summary>
    DebeziumJson,
    /// <summary>Debezium's change event envelope, one record per row change, Avro in Confluent's wire format with Schema Registry.</summary>
    DebeziumAvro,
}

/// <summary><c>decimal.handling.mode</c>.</summary>
public enum DecimalHandlingMode { Precise, Double, String }

/// <summary><c>time.precision.mode</c> (the modes WalBridge implements).</summary>
public enum TimePrecisionMode { Adaptive, AdaptiveTimeMicroseconds, Connect }

/// <summary><c>binary.handling.mode</c>.</summary>
public enum BinaryHandlingMode { Bytes, Base64, Base64UrlSafe, Hex }

/// <summary><c>interval.handling.mode</c>.</summary>
public enum IntervalHandlingMode { Numeric, String }

/// <summary>
/// The output formats and the Debezium settings, validated. Part of <see cref="ConnectorConfig"/>; immutable.
/// </summary>
public sealed class OutputSettings
{
    /// <summary>Every key this class reads (besides <c>schema.registry.*</c>).</summary>
    internal static readonly string[] Keys =
    [
        "output.formats", "output.arrow.topic.suffix", "output.debezium-json.topic.suffix", "output.debezium-avro.topic.suffix",
        "output.debezium-json.schemas.enable",
        "tombstones.on.delete", "provide.transaction.metadata", "topic.transaction", "skipped.operations",
        "decimal.handling.mode", "time.precision.mode", "binary.handling.mode", "interval.handling.mode",
        "unavailable.value.placeholder", "money.fraction.digits",
    ];

    /// <summary>The settings Confluent.SchemaRegistry's client understands (its <c>SchemaRegistryConfig.PropertyNames</c>).</summary>
    private static readonly HashSet<string> s_registryKeys = typeof(Confluent.SchemaRegistry.SchemaRegistryConfig.PropertyNames)
        .GetFields(System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Static)
        .Where(f => f.IsLiteral && f.FieldType == typeof(string))
        .Select(f => (string)f.GetRawConstantValue()!)
        .Where(k => k.StartsWith(SchemaRegistryPrefix, StringComparison.Ordinal))
        .ToHashSet(StringComparer.Ordinal);

    /// <summary>Prefix of the Schema Registry client settings, passed to Confluent.SchemaRegistry as they are.</summary>
    public const string SchemaRegistryPrefix = "schema.registry.";

    /// <summary>The enabled formats, in the order their records are produced within a source transaction.</summary>
    public required IReadOnlyList<OutputFormat> Formats { get; init; }

    /// <summary>Topic name suffix per enabled format (empty: the plain <c>&lt;topic.prefix&gt;.&lt;schema&gt;.&lt;table&gt;</c>).</summary>
    public required IReadOnlyDictionary<OutputFormat, string> TopicSuffixes { get; init; }

    public bool Includes(OutputFormat format) => Formats.Contains(format);

    /// <summary>Kafka Connect JsonConverter's <c>schemas.enable</c>: each JSON key and value is <c>{"schema": …, "payload": …}</c>.</summary>
    public required bool JsonSchemasEnabled { get; init; }

    public required bool TombstonesOnDelete { get; init; }
    public required bool ProvideTransactionMetadata { get; init; }

    /// <summary>The transaction metadata topic's last part (<c>&lt;topic.prefix&gt;.&lt;topic.transaction&gt;</c>).</summary>
    public required string TransactionTopicName { get; init; }

    /// <summary>Debezium <c>op</c> codes not emitted (<c>skipped.operations</c>; Debezium's default skips truncates).</summary>
    public required IReadOnlySet<char> SkippedOperations { get; init; }

    public required DecimalHandlingMode DecimalMode { get; init; }
    public required TimePrecisionMode TimePrecision { get; init; }
    public required BinaryHandlingMode BinaryMode { get; init; }
    public required IntervalHandlingMode IntervalMode { get; init; }

    /// <summary>The placeholder for unchanged TOAST values, as bytes (<c>hex:</c> values decoded, others UTF-8).</summary>
    public required byte[] UnavailableValuePlaceholder { get; init; }

    public required int MoneyFractionDigits { get; init; }

    /// <summary>Schema Registry client settings (<c>schema.registry.url</c> and the rest of <c>schema.registry.*</c>, keys unchanged).</summary>
    public required IReadOnlyDictionary<string, string> SchemaRegistry { get; init; }

    /// <summary>The configuration name of <paramref name="format"/>.</summary>
    public static string Name(OutputFormat format) => format switch
    {
        OutputFormat.Arrow => "arrow",
        OutputFormat.DebeziumJson => "debezium-json",
        OutputFormat.DebeziumAvro => "debezium-avro",
        _ => throw new ArgumentOutOfRangeException(nameof(format), format, "Unknown output format."),
    };

    /// <summary>The format named <paramref name="name"/>, or null.</summary>
    public static OutputFormat? Parse(string name) =>
        Enum.GetValues<OutputFormat>().Cast<OutputFormat?>().FirstOrDefault(f => Name(f!.Value) == name);

    /// <summary>The documented default suffix: none when the format is the only one; otherwise none for Arrow, <c>.json</c> and <c>.avro</c> for the Debezium formats.</summary>
    public static string DefaultSuffix(OutputFormat format, IReadOnlyCollection<OutputFormat> enabled)
    {
        ArgumentNullException.ThrowIfNull(enabled);
        if (enabled.Count == 1)
        {
            return "";
        }

        return format switch
        {
            OutputFormat.DebeziumJson => ".json",
            OutputFormat.DebeziumAvro => ".avro",
            _ => "",
        };
    }

    /// <summary>Whether <paramref name="key"/> is one of the keys read here (or a Schema Registry client setting).</summary>
    internal static bool IsKnownKey(string key) =>
        Array.IndexOf(Keys, key) >= 0 || (key.StartsWith(SchemaRegistryPrefix, StringComparison.Ordinal) && key.Length > SchemaRegistryPrefix.Length);

    /// <exception cref="ConfigurationException">An invalid value; the message names the key.</exception>
    internal static OutputSettings FromDictionary(IReadOnlyDictionary<string, string> values)
    {
        string Optional(string key, string fallback) =>
            values.TryGetValue(key, out var v) && !string.IsNullOrWhiteSpace(v) ? v.Trim() : fallback;
        bool Flag(string key, bool fallback)
        {
            var text = Optional(key, fallback ? "true" : "false");
            return text switch
            {
                "true" => true,
                "false" => false,
                _ => throw new ConfigurationException($"Configuration key '{key}' must be true or false, found '{text}'."),
            };
        }
        T Choice<T>(string key, string fallback, params (string Name, T Value)[] choices)
        {
            var text = Optional(key, fallback);
            foreach (var (name, value) in choices)
            {
                if (name == text)
                {
                    return value;
                }
            }
            throw new ConfigurationException($"Configuration key '{key}' must be one of {string.Join(", ", choices.Select(c => c.Name))}, found '{text}'.");
        }

        var formats = new List<OutputFormat>();
        foreach (var name in Optional("output.formats", "arrow").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            var format = Parse(name) ?? throw new ConfigurationException(
                $"Configuration key 'output.formats' lists '{name}'; the formats are {string.Join(", ", Enum.GetValues<OutputFormat>().Select(Name))}.");
            if (formats.Contains(format))
            {
                throw new ConfigurationException($"Configuration key 'output.formats' lists '{name}' twice.");
            }

            formats.Add(format);
        }
        if (formats.Count == 0)
        {
            throw new ConfigurationException("Configuration key 'output.formats' must name at least one format.");
        }

        // Records of a source transaction are produced in this order whatever the order of the list.
        formats.Sort();

        var suffixes = new Dictionary<OutputFormat, string>();
        foreach (var format in Enum.GetValues<OutputFormat>())
        {
            var key = $"output.{Name(format)}.topic.suffix";
            var given = values.TryGetValue(key, out var v) ? v.Trim() : null;
            if (!formats.Contains(format))
            {
                if (!string.IsNullOrEmpty(given))
                {
                    throw new ConfigurationException($"Configuration key '{key}' is set, but '{Name(format)}' is not in 'output.formats'.");
                }

                continue;
            }
            var suffix = given ?? DefaultSuffix(format, formats);
            if (!Regex.IsMatch(suffix, "^[A-Za-z0-9._-]{0,100}$"))
            {
                throw new ConfigurationException($"Configuration key '{key}' may hold only letters, digits, '.', '_' and '-' (Kafka's topic name rule), found '{suffix}'.");
            }

            suffixes[format] = suffix;
        }
        foreach (var group in suffixes.GroupBy(kv => kv.Value).Where(g => g.Count() > 1))
        {
            throw new ConfigurationException(
                $"Output formats {string.Join(" and ", group.Select(kv => Name(kv.Key)))} would write to the same topics (topic suffix '{group.Key}'): set 'output.<format>.topic.suffix' to tell them apart.");
        }

        var skipped = new HashSet<char>();
        var skippedText = Optional("skipped.operations", "t");
        if (skippedText != "none")
        {
            foreach (var op in skippedText.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            {
                if (op is not ("c" or "u" or "d" or "t"))
                {
                    throw new ConfigurationException($"Configuration key 'skipped.operations' must be 'none' or a comma-separated list of c, u, d, t; found '{op}'.");
                }

                skipped.Add(op[0]);
            }
        }

        var placeholderText = values.TryGetValue("unavailable.value.placeholder", out var p) && p.Length > 0 ? p : "__debezium_unavailable_value";
        byte[] placeholder;
        if (placeholderText.StartsWith("hex:", StringComparison.Ordinal))
        {
            try
            {
                placeholder = Convert.FromHexString(placeholderText.AsSpan(4));
            }
            catch (FormatException e)
            {
                throw new ConfigurationException($"Configuration key 'unavailable.value.placeholder' starts with 'hex:' but '{placeholderText[4..]}' is not an even number of hex digits.", e);
            }
        }
        else
        {
            placeholder = System.Text.Encoding.UTF8.GetBytes(placeholderText);
        }

        var moneyText = Optional("money.fraction.digits", "2");
        if (!int.TryParse(moneyText, NumberStyles.Integer, CultureInfo.InvariantCulture, out var moneyDigits) || moneyDigits < 0 || moneyDigits > 18)
        {
            throw new ConfigurationException($"Configuration key 'money.fraction.digits' must be a whole number from 0 to 18, found '{moneyText}'.");
        }

        var transactionTopic = Optional("topic.transaction", "transaction");
        if (!Regex.IsMatch(transactionTopic, "^[A-Za-z0-9._-]{1,200}$"))
        {
            throw new ConfigurationException($"Configuration key 'topic.transaction' may hold only letters, digits, '.', '_' and '-', found '{transactionTopic}'.");
        }

        var registry = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, value) in values)
        {
            if (key.StartsWith(SchemaRegistryPrefix, StringComparison.Ordinal))
            {
                registry[key] = value;
            }
        }
        foreach (var key in registry.Keys)
        {
            if (!s_registryKeys.Contains(key))
            {
                throw new ConfigurationException($"Unknown Schema Registry setting '{key}'. The client (Confluent.SchemaRegistry) knows {string.Join(", ", s_registryKeys.Order(StringComparer.Ordinal))}.");
            }
        }
        if (formats.Contains(OutputFormat.DebeziumAvro) && !registry.ContainsKey("schema.registry.url"))
        {
            throw new ConfigurationException("Configuration key 'schema.registry.url' is required when 'output.formats' includes debezium-avro.");
        }

        if (!formats.Contains(OutputFormat.DebeziumAvro) && registry.Count > 0)
        {
            throw new ConfigurationException($"Configuration key '{registry.Keys.First()}' is set, but only the debezium-avro format uses a Schema Registry.");
        }

        return new OutputSettings
        {
            Formats = formats,
            TopicSuffixes = suffixes,
            JsonSchemasEnabled = Flag("output.debezium-json.schemas.enable", true),
            TombstonesOnDelete = Flag("tombstones.on.delete", true),
            ProvideTransactionMetadata = Flag("provide.transaction.metadata", false),
            TransactionTopicName = transactionTopic,
            SkippedOperations = skipped,
            DecimalMode = Choice("decimal.handling.mode", "precise", ("precise", DecimalHandlingMode.Precise), ("double", DecimalHandlingMode.Double), ("string", DecimalHandlingMode.String)),
            TimePrecision = Choice("time.precision.mode", "adaptive", ("adaptive", TimePrecisionMode.Adaptive),
                ("adaptive_time_microseconds", TimePrecisionMode.AdaptiveTimeMicroseconds), ("connect", TimePrecisionMode.Connect)),
            BinaryMode = Choice("binary.handling.mode", "bytes", ("bytes", BinaryHandlingMode.Bytes), ("base64", BinaryHandlingMode.Base64),
                ("base64-url-safe", BinaryHandlingMode.Base64UrlSafe), ("hex", BinaryHandlingMode.Hex)),
            IntervalMode = Choice("interval.handling.mode", "numeric", ("numeric", IntervalHandlingMode.Numeric), ("string", IntervalHandlingMode.String)),
            UnavailableValuePlaceholder = placeholder,
            MoneyFractionDigits = moneyDigits,
            SchemaRegistry = registry,
        };
    }
}
