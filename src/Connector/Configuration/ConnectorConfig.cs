using System.Globalization;
using System.Text.RegularExpressions;
using WalBridge.Serialization.Payload;

namespace WalBridge.Connector.Configuration;

/// <summary>Which logical decoding output plugin produces the change stream.</summary>
public enum DecodingPlugin
{
    /// <summary>PostgreSQL's built-in plugin; the connector decodes rows and builds Arrow batches.</summary>
    PgOutput,
    /// <summary>Our C plugin; Arrow IPC streams are built inside PostgreSQL and passed through.</summary>
    Wal2Arrow,
}

/// <summary>The one place a <see cref="DecodingPlugin"/> is named: the configuration value, the slot's plugin and the log.</summary>
public static class DecodingPlugins
{
    /// <summary>The output plugin's name, as the slot, <c>START_REPLICATION</c> and the <c>plugin</c> setting spell it.</summary>
    public static string Name(this DecodingPlugin plugin) => plugin switch
    {
        DecodingPlugin.PgOutput => "pgoutput",
        DecodingPlugin.Wal2Arrow => "wal2arrow",
        _ => throw new ArgumentOutOfRangeException(nameof(plugin), plugin, "Unknown decoding plugin."),
    };

    /// <summary>The plugin named <paramref name="name"/> (as <see cref="Name"/> spells it), or null.</summary>
    public static DecodingPlugin? Parse(string name) =>
        Enum.GetValues<DecodingPlugin>().Cast<DecodingPlugin?>().FirstOrDefault(p => p!.Value.Name() == name);
}

/// <summary>What happens to the rows that exist before streaming starts (<c>snapshot.mode</c>, Debezium's names).</summary>
public enum SnapshotMode
{
    /// <summary>Snapshot the published tables once (when no position is committed), then stream.</summary>
    Initial,
    /// <summary>Stream only: rows that existed before the slot are not delivered.</summary>
    NoData,
    /// <summary>Snapshot once, then stop (exit 0) without streaming.</summary>
    InitialOnly,
    /// <summary>As <see cref="Initial"/>, and snapshot again when the slot was lost or recreated instead of refusing to start.</summary>
    WhenNeeded,
}

/// <summary>The one place a <see cref="SnapshotMode"/> is named.</summary>
public static class SnapshotModes
{
    public static string Name(this SnapshotMode mode) => mode switch
    {
        SnapshotMode.Initial => "initial",
        SnapshotMode.NoData => "no_data",
        SnapshotMode.InitialOnly => "initial_only",
        SnapshotMode.WhenNeeded => "when_needed",
        _ => throw new ArgumentOutOfRangeException(nameof(mode), mode, "Unknown snapshot mode."),
    };

    public static SnapshotMode? Parse(string name) =>
        Enum.GetValues<SnapshotMode>().Cast<SnapshotMode?>().FirstOrDefault(m => m!.Value.Name() == name);

    /// <summary>Whether the mode delivers the rows that exist when no position is committed yet.</summary>
    public static bool TakesInitialSnapshot(this SnapshotMode mode) => mode != SnapshotMode.NoData;
}

/// <summary>
/// The validated connector configuration. Built once at start-up from flat dotted keys
/// (Kafka Connect / Debezium names); immutable afterwards.
/// </summary>
public sealed class ConnectorConfig
{
    private static readonly string[] s_knownKeys =
    [
        "name",
        "database.hostname", "database.port", "database.user", "database.password", "database.dbname", "database.sslmode",
        "plugin", "slot.name", "publication.name", "table.include.list", "table.exclude.list", "publication.via.partition.root",
        "slot.create.timeout.ms", "binary.format", "topic.prefix", "topic.partitions",
        "topic.replication.factor", "offsets.topic", "state.dir",
        "transaction.max.source.transactions", "transaction.max.bytes", "transaction.linger.ms",
        "queue.max.transactions", "queue.max.bytes", "transaction.memory.bytes", "status.interval.ms", "heartbeat.interval.ms", "messages.topic",
        "database.password.file", "database.sslrootcert", "slot.failover",
        "operations.listen", "operations.token", "operations.token.file", "operations.source.poll.interval.ms", "health.ready.max.lag.ms",
        "ha.enabled", "ha.poll.interval.ms", "ha.session.timeout.ms",
        "arrow.compression",
        "snapshot.mode", "snapshot.max.threads", "snapshot.chunk.rows",
        "signal.data.collection", "signal.poll.interval.ms", "incremental.snapshot.chunk.size",
    ];

    private static readonly HashSet<string> s_knownKeySet = new(s_knownKeys, StringComparer.Ordinal);

    private static readonly string[] s_sslModes = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"];

    /// <summary>Keys whose values are never logged or printed.</summary>
    public static bool IsSecretKey(string key) =>
        key.Contains("password", StringComparison.OrdinalIgnoreCase) ||
        key.Contains("secret", StringComparison.OrdinalIgnoreCase) ||
        key.Contains("token", StringComparison.OrdinalIgnoreCase) ||
        key.EndsWith(".key", StringComparison.OrdinalIgnoreCase) ||
        key.Contains("sasl.jaas", StringComparison.OrdinalIgnoreCase) ||
        key.Contains("user.info", StringComparison.OrdinalIgnoreCase) ||
        key.Contains("auth.token", StringComparison.OrdinalIgnoreCase);

    /// <summary>Whether <paramref name="key"/> is a configuration key this version understands.</summary>
    public static bool IsKnownKey(string key) =>
        s_knownKeySet.Contains(key) || OutputSettings.IsKnownKey(key) || (key.StartsWith("kafka.", StringComparison.Ordinal) && key.Length > "kafka.".Length);

    public required string Name { get; init; }
    public required string DatabaseHost { get; init; }
    public required int DatabasePort { get; init; }
    public required string DatabaseUser { get; init; }
    public string? DatabasePassword { get; init; }
    public required string DatabaseName { get; init; }
    public required string DatabaseSslMode { get; init; }
    public required DecodingPlugin Plugin { get; init; }
    public required string SlotName { get; init; }
    public required string PublicationName { get; init; }
    /// <summary>Regular expressions matched against <c>schema.table</c>; empty means every table.</summary>
    public required IReadOnlyList<Regex> TableIncludeList { get; init; }
    /// <summary>Regular expressions matched against <c>schema.table</c>: matching tables are left out.</summary>
    public required IReadOnlyList<Regex> TableExcludeList { get; init; }
    /// <summary>Whether the table lists select the tables (a filtered publication the connector keeps in sync) or not (FOR ALL TABLES).</summary>
    public bool FiltersTables => TableIncludeList.Count > 0 || TableExcludeList.Count > 0;
    /// <summary>Publish partitions' changes under their partitioned root table (<c>publish_via_partition_root</c>).</summary>
    public required bool PublishViaPartitionRoot { get; init; }
    /// <summary>
    /// pgoutput's binary tuple format (<c>binary.format=auto</c>, PostgreSQL 14+): cheaper to produce and
    /// parse, used while every streamed column's type arrives exactly in it; <c>off</c> keeps text.
    /// </summary>
    public required bool BinaryFormat { get; init; }

    /// <summary><c>snapshot.mode</c>: whether (and when) existing rows are delivered as a snapshot.</summary>
    public SnapshotMode SnapshotMode { get; init; } = SnapshotMode.Initial;
    /// <summary><c>snapshot.max.threads</c>: how many sessions read snapshot chunks in parallel.</summary>
    public int SnapshotMaxThreads { get; init; } = 2;
    /// <summary><c>snapshot.chunk.rows</c>: about how many rows one snapshot chunk (one Kafka transaction) holds.</summary>
    public long SnapshotChunkRows { get; init; } = 100_000;
    /// <summary>
    /// <c>signal.data.collection</c>: the signal table (<c>schema.table</c>, Debezium's <c>id</c>, <c>type</c>,
    /// <c>data</c> columns) whose <c>execute-snapshot</c> rows start incremental snapshots; null when none is used.
    /// </summary>
    public string? SignalDataCollection { get; init; }
    /// <summary><c>signal.poll.interval.ms</c>: how often the signal table is read.</summary>
    public TimeSpan SignalPollInterval { get; init; } = TimeSpan.FromSeconds(1);
    /// <summary><c>incremental.snapshot.chunk.size</c>: rows read in one watermark window of an incremental snapshot.</summary>
    public int IncrementalChunkSize { get; init; } = 1024;

    /// <summary>How long creating the slot may wait for transactions that were running to end.</summary>
    public required TimeSpan SlotCreateTimeout { get; init; }
    public required string TopicPrefix { get; init; }
    public required int TopicPartitions { get; init; }
    public required short TopicReplicationFactor { get; init; }
    public required string OffsetsTopic { get; init; }
    public required string StateDirectory { get; init; }
    public required int MaxSourceTransactionsPerKafkaTransaction { get; init; }
    public required long MaxBytesPerKafkaTransaction { get; init; }
    public required TimeSpan TransactionLinger { get; init; }
    public required int QueueMaxTransactions { get; init; }
    /// <summary>In-memory payload bytes waiting for Kafka at most; when exceeded the replication reader waits.</summary>
    public required long QueueMaxBytes { get; init; }
    /// <summary>Payload bytes one source transaction keeps in memory; beyond that its chunks go to a spill file.</summary>
    public required long TransactionMemoryBytes { get; init; }
    /// <summary>Where spill files live (<c>&lt;state.dir&gt;/spill</c>).</summary>
    public string SpillDirectory => Path.Combine(StateDirectory, "spill");
    public required TimeSpan StatusInterval { get; init; }
    /// <summary>How long the stream may be idle before a heartbeat message is emitted; zero disables heartbeats.</summary>
    public required TimeSpan HeartbeatInterval { get; init; }
    /// <summary>Topic for logical decoding messages (<c>pg_logical_emit_message</c>).</summary>
    public required string MessagesTopic { get; init; }

    /// <summary>
    /// Prefix of this connector's heartbeat messages. It names the slot, so connectors sharing a
    /// database recognise (and ignore) each other's heartbeats.
    /// </summary>
    public string HeartbeatPrefix => HeartbeatPrefixBase + SlotName;

    /// <summary>Prefix shared by every WalBridge heartbeat message.</summary>
    public const string HeartbeatPrefixBase = "walbridge.heartbeat.";
    /// <summary>The CA certificate file that verifies the server for <c>verify-ca</c>/<c>verify-full</c> (<c>database.sslrootcert</c>); null for Npgsql's default.</summary>
    public string? DatabaseSslRootCertificate { get; init; }

    /// <summary>Create (or switch) the slot as a PostgreSQL 17 failover slot, kept on physical standbys (<c>slot.failover</c>).</summary>
    public bool SlotFailover { get; init; }

    /// <summary>Where the metrics, health and admin endpoints listen (<c>operations.listen</c>); null when switched off.</summary>
    public System.Net.IPEndPoint? OperationsListen { get; init; }

    /// <summary>The bearer token the admin API and /metrics require (<c>operations.token</c> or <c>operations.token.file</c>); null for none (loopback only).</summary>
    public string? OperationsToken { get; init; }

    /// <summary>How often the source's WAL position and the slot's state are polled for the lag figures.</summary>
    public TimeSpan SourcePollInterval { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>/health/ready answers 200 only while streaming and at most this far behind the source.</summary>
    public TimeSpan ReadyMaxLag { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>Whether instances with the same <see cref="Name"/> elect one leader (a PostgreSQL advisory lock) before touching Kafka.</summary>
    public bool HighAvailability { get; init; } = true;

    /// <summary>How often a standby tries to take the leadership, and the leader checks its lock session.</summary>
    public TimeSpan HaPollInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>How long a leader whose host vanished may keep its lock (server-side TCP keepalive of the lock session), and how long a new leader waits for the old walsender to let the slot go.</summary>
    public TimeSpan HaSessionTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>The flat keys this configuration was built from (for the admin API's config view; print only through <see cref="Describe"/>).</summary>
    public IReadOnlyDictionary<string, string> SourceValues { get; init; } = new Dictionary<string, string>();
    /// <summary>
    /// Arrow IPC body compression of the record batches the connector encodes (<c>arrow.compression</c>: none, lz4_frame,
    /// zstd; default none). Only the pgoutput path encodes batches: the wal2arrow plugin's are passed through as the
    /// plugin encoded them, so any value but none is rejected with <c>plugin=wal2arrow</c>. Kafka's own record-batch
    /// compression is <c>kafka.compression.type</c>, independent of this and valid with both plugins.
    /// </summary>
    public ArrowCompression ArrowCompression { get; init; }

    /// <summary>librdkafka properties (the <c>kafka.</c> prefix removed), passed through unchanged.</summary>
    public required IReadOnlyDictionary<string, string> Kafka { get; init; }

    /// <summary>The output formats (<c>output.formats</c>) and the Debezium settings.</summary>
    public required OutputSettings Output { get; init; }

    /// <summary>The largest record value the producer accepts (<c>kafka.message.max.bytes</c>, librdkafka's default 1,000,000).</summary>
    public int MessageMaxBytes =>
        Kafka.TryGetValue("message.max.bytes", out var v) && int.TryParse(v, CultureInfo.InvariantCulture, out var n) ? n : 1_000_000;

    /// <summary>Bytes of <see cref="MessageMaxBytes"/> kept for a record's headers and Kafka's record framing.</summary>
    public const int RecordOverhead = 4096;

    /// <summary>
    /// The most bytes one record value (one chunk's Arrow stream) may have: <see cref="MessageMaxBytes"/> minus
    /// <see cref="RecordOverhead"/>. Both decoders cut chunks to this size; only a single row larger than it is fatal.
    /// </summary>
    public int ChunkLimit => Math.Max(MessageMaxBytes - RecordOverhead, 1024);

    /// <summary>The topic that holds <paramref name="schema"/>.<paramref name="table"/>'s Arrow records (with <c>output.arrow.topic.suffix</c>).</summary>
    public string TopicFor(string schema, string table) => $"{TopicPrefix}.{schema}.{table}{Output.TopicSuffixes.GetValueOrDefault(OutputFormat.Arrow, "")}";

    /// <summary>Whether a table is selected by <c>table.include.list</c>.</summary>
    public bool Includes(string schema, string table)
    {
        var qualified = $"{schema}.{table}";
        foreach (var regex in TableExcludeList)
        {
            if (regex.IsMatch(qualified))
            {
                return false;
            }
        }
        if (TableIncludeList.Count == 0)
        {
            return true;
        }

        foreach (var regex in TableIncludeList)
        {
            if (regex.IsMatch(qualified))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>
    /// Validates <paramref name="values"/> and builds the configuration.
    /// </summary>
    /// <exception cref="ConfigurationException">An unknown key, a missing required key or an invalid value; the message names the key.</exception>
    public static ConnectorConfig FromDictionary(IReadOnlyDictionary<string, string> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        foreach (var key in values.Keys)
        {
            if (!IsKnownKey(key))
            {
                throw new ConfigurationException($"Unknown configuration key '{key}'. Known keys: {string.Join(", ", s_knownKeys.Concat(OutputSettings.Keys))}, kafka.* for librdkafka properties and schema.registry.* for the Schema Registry client.");
            }
        }

        string Required(string key) =>
            values.TryGetValue(key, out var v) && !string.IsNullOrWhiteSpace(v)
                ? v
                : throw new ConfigurationException($"Missing required configuration key '{key}'.");
        string Optional(string key, string fallback) =>
            values.TryGetValue(key, out var v) && !string.IsNullOrWhiteSpace(v) ? v : fallback;
        long Number(string key, long fallback, long min, long max)
        {
            if (!values.TryGetValue(key, out var v) || string.IsNullOrWhiteSpace(v))
            {
                return fallback;
            }

            if (!long.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) || n < min || n > max)
            {
                throw new ConfigurationException($"Configuration key '{key}' must be a whole number from {min} to {max}, found '{v}'.");
            }

            return n;
        }

        var name = Required("name");
        if (!Regex.IsMatch(name, "^[A-Za-z0-9._-]{1,100}$"))
        {
            throw new ConfigurationException($"Configuration key 'name' must be 1-100 characters of letters, digits, '.', '_' or '-', found '{name}'.");
        }

        var identifier = Regex.Replace(name.ToLowerInvariant(), "[^a-z0-9_]", "_");

        var sslMode = Optional("database.sslmode", "prefer");
        if (Array.IndexOf(s_sslModes, sslMode) < 0)
        {
            throw new ConfigurationException($"Configuration key 'database.sslmode' must be one of {string.Join(", ", s_sslModes)}, found '{sslMode}'.");
        }

        var pluginText = Optional("plugin", DecodingPlugin.PgOutput.Name());
        var plugin = DecodingPlugins.Parse(pluginText) ?? throw new ConfigurationException(
            $"Configuration key 'plugin' must be one of {string.Join(", ", Enum.GetValues<DecodingPlugin>().Select(p => $"'{p.Name()}'"))}, found '{pluginText}'.");

        var slot = Optional("slot.name", $"walbridge_{identifier}");
        if (!Regex.IsMatch(slot, "^[a-z0-9_]{1,63}$"))
        {
            throw new ConfigurationException($"Configuration key 'slot.name' must be 1-63 lower-case letters, digits or underscores (PostgreSQL's rule for slot names), found '{slot}'.");
        }

        List<Regex> Patterns(string key)
        {
            var list = new List<Regex>();
            foreach (var pattern in Optional(key, "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                try
                {
                    // Anchored like Debezium: the expression must match the whole schema.table name.
                    list.Add(new Regex($"^(?:{pattern})$", RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1)));
                }
                catch (ArgumentException e)
                {
                    throw new ConfigurationException($"Configuration key '{key}': '{pattern}' is not a valid regular expression: {e.Message}", e);
                }
            }
            return list;
        }
        var include = Patterns("table.include.list");
        var exclude = Patterns("table.exclude.list");
        var binaryText = Optional("binary.format", "auto");
        if (binaryText is not ("auto" or "off"))
        {
            throw new ConfigurationException($"Configuration key 'binary.format' must be auto or off, found '{binaryText}'.");
        }

        var viaRootText = Optional("publication.via.partition.root", "false");
        if (viaRootText is not ("true" or "false"))
        {
            throw new ConfigurationException($"Configuration key 'publication.via.partition.root' must be true or false, found '{viaRootText}'.");
        }

        var snapshotModeText = Optional("snapshot.mode", SnapshotMode.Initial.Name());
        var snapshotMode = SnapshotModes.Parse(snapshotModeText) ?? throw new ConfigurationException(
            $"Configuration key 'snapshot.mode' must be initial, no_data, initial_only or when_needed, found '{snapshotModeText}'.");
        var compressionText = Optional("arrow.compression", ArrowCompression.None.Name());
        var compression = ArrowCompressions.Parse(compressionText) ?? throw new ConfigurationException(
            $"Configuration key 'arrow.compression' must be one of {string.Join(", ", Enum.GetValues<ArrowCompression>().Select(c => c.Name()))}, found '{compressionText}'.");
        if (compression != ArrowCompression.None && plugin == DecodingPlugin.Wal2Arrow)
        {
            throw new ConfigurationException(
                $"Configuration key 'arrow.compression' ({compressionText}) applies only to plugin=pgoutput: the wal2arrow plugin's record batches are " +
                "passed through as PostgreSQL encoded them, uncompressed. Remove it, or compress Kafka's record batches with kafka.compression.type (lz4, zstd).");
        }

        var kafka = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, value) in values)
        {
            if (key.StartsWith("kafka.", StringComparison.Ordinal))
            {
                kafka[key["kafka.".Length..]] = value;
            }
        }
        if (!kafka.ContainsKey("bootstrap.servers"))
        {
            throw new ConfigurationException("Missing required configuration key 'kafka.bootstrap.servers'.");
        }

        foreach (var reserved in new[] { "transactional.id", "enable.idempotence", "isolation.level", "group.id" })
        {
            if (kafka.ContainsKey(reserved))
            {
                throw new ConfigurationException($"Configuration key 'kafka.{reserved}' is set by the connector itself (exactly-once delivery depends on it); remove it.");
            }
        }
        // librdkafka reports a missing certificate or key file only as an OpenSSL error without the path: name it here.
        foreach (var (key, value) in kafka)
        {
            if (key.EndsWith(".location", StringComparison.Ordinal) && value.Length > 0 && value != "probe" && !File.Exists(value))
            {
                throw new ConfigurationException($"Configuration key 'kafka.{key}' names '{value}', which does not exist or cannot be read.");
            }
        }

        var topicPrefix = Required("topic.prefix");
        if (!Regex.IsMatch(topicPrefix, "^[A-Za-z0-9._-]{1,200}$"))
        {
            throw new ConfigurationException($"Configuration key 'topic.prefix' may hold only letters, digits, '.', '_' and '-' (Kafka's topic name rule), found '{topicPrefix}'.");
        }

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

        string? Secret(string key)
        {
            var fileKey = key + ".file";
            var direct = values.TryGetValue(key, out var v) && v.Length > 0 ? v : null;
            if (!values.TryGetValue(fileKey, out var file) || string.IsNullOrWhiteSpace(file))
            {
                return direct;
            }

            if (direct is not null)
            {
                throw new ConfigurationException($"Configuration keys '{key}' and '{fileKey}' are both set; keep one.");
            }

            try
            {
                // The file's content without the line end an editor or `echo` adds.
                return File.ReadAllText(file).TrimEnd('\r', '\n');
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new ConfigurationException($"Configuration key '{fileKey}' names '{file}', which cannot be read: {e.Message}", e);
            }
        }

        var rootCertificate = values.TryGetValue("database.sslrootcert", out var rootCert) && rootCert.Length > 0 ? rootCert : null;
        if (rootCertificate is not null && !File.Exists(rootCertificate))
        {
            throw new ConfigurationException($"Configuration key 'database.sslrootcert' names '{rootCertificate}', which does not exist or cannot be read.");
        }

        var listenText = Optional("operations.listen", "127.0.0.1:8083");
        System.Net.IPEndPoint? listen = null;
        if (listenText != "off")
        {
            if (!System.Net.IPEndPoint.TryParse(listenText, out listen) || !listenText.Contains(':', StringComparison.Ordinal))
            {
                throw new ConfigurationException($"Configuration key 'operations.listen' must be an address and port (127.0.0.1:8083, [::1]:8083, 0.0.0.0:8083) or off, found '{listenText}'.");
            }
        }

        var token = Secret("operations.token");
        if (listen is not null && !System.Net.IPAddress.IsLoopback(listen.Address) && string.IsNullOrEmpty(token))
        {
            throw new ConfigurationException(
                $"operations.listen = {listenText} accepts connections from other hosts, so the admin API needs a bearer token: set 'operations.token' or 'operations.token.file' (or listen on 127.0.0.1).");
        }

        if (token is not null && token.Length < 16)
        {
            throw new ConfigurationException("Configuration key 'operations.token' must be at least 16 characters long.");
        }

        return new ConnectorConfig
        {
            SourceValues = new Dictionary<string, string>(values, StringComparer.Ordinal),
            DatabaseSslRootCertificate = rootCertificate,
            SlotFailover = Flag("slot.failover", false),
            OperationsListen = listen,
            OperationsToken = token,
            SourcePollInterval = TimeSpan.FromMilliseconds(Number("operations.source.poll.interval.ms", 5_000, 100, 600_000)),
            ReadyMaxLag = TimeSpan.FromMilliseconds(Number("health.ready.max.lag.ms", 60_000, 1, 86_400_000)),
            HighAvailability = Flag("ha.enabled", true),
            HaPollInterval = TimeSpan.FromMilliseconds(Number("ha.poll.interval.ms", 1_000, 100, 60_000)),
            HaSessionTimeout = TimeSpan.FromMilliseconds(Number("ha.session.timeout.ms", 10_000, 2_000, 600_000)),
            Name = name,
            DatabaseHost = Optional("database.hostname", "localhost"),
            DatabasePort = (int)Number("database.port", 5432, 1, 65535),
            DatabaseUser = Required("database.user"),
            DatabasePassword = Secret("database.password"),
            DatabaseName = Required("database.dbname"),
            DatabaseSslMode = sslMode,
            Plugin = plugin,
            SlotName = slot,
            PublicationName = Optional("publication.name", $"walbridge_{identifier}"),
            TableIncludeList = include,
            TableExcludeList = exclude,
            PublishViaPartitionRoot = viaRootText == "true",
            BinaryFormat = binaryText == "auto",
            SlotCreateTimeout = TimeSpan.FromMilliseconds(Number("slot.create.timeout.ms", 60_000, 1_000, 3_600_000)),
            TopicPrefix = topicPrefix,
            TopicPartitions = (int)Number("topic.partitions", 1, 1, 10_000),
            TopicReplicationFactor = (short)Number("topic.replication.factor", -1, -1, 32767),
            OffsetsTopic = Optional("offsets.topic", $"{topicPrefix}.walbridge.offsets"),
            StateDirectory = Optional("state.dir", Path.Combine(".", "state", identifier)),
            MaxSourceTransactionsPerKafkaTransaction = (int)Number("transaction.max.source.transactions", 500, 1, 1_000_000),
            MaxBytesPerKafkaTransaction = Number("transaction.max.bytes", 64L << 20, 1, long.MaxValue),
            TransactionLinger = TimeSpan.FromMilliseconds(Number("transaction.linger.ms", 0, 0, 60_000)),
            QueueMaxTransactions = (int)Number("queue.max.transactions", 256, 1, 1_000_000),
            QueueMaxBytes = Number("queue.max.bytes", 64L << 20, 1 << 20, long.MaxValue),
            TransactionMemoryBytes = Number("transaction.memory.bytes", 16L << 20, 0, long.MaxValue),
            StatusInterval = TimeSpan.FromMilliseconds(Number("status.interval.ms", 1_000, 100, 600_000)),
            HeartbeatInterval = TimeSpan.FromMilliseconds(Number("heartbeat.interval.ms", 10_000, 0, 3_600_000)),
            MessagesTopic = Optional("messages.topic", $"{topicPrefix}.messages"),
            ArrowCompression = compression,
            SnapshotMode = snapshotMode,
            SnapshotMaxThreads = (int)Number("snapshot.max.threads", 2, 1, 64),
            SnapshotChunkRows = Number("snapshot.chunk.rows", 100_000, 100, 100_000_000),
            SignalDataCollection = SignalTable(values.TryGetValue("signal.data.collection", out var signal) ? signal : null),
            SignalPollInterval = TimeSpan.FromMilliseconds(Number("signal.poll.interval.ms", 1_000, 50, 600_000)),
            IncrementalChunkSize = (int)Number("incremental.snapshot.chunk.size", 1024, 1, 1_000_000),
            Kafka = kafka,
            Output = OutputSettings.FromDictionary(values),
        };
    }

    /// <summary><c>signal.data.collection</c> checked: empty is none; otherwise exactly <c>schema.table</c>.</summary>
    private static string? SignalTable(string? value)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            return null;
        }

        var parts = value.Trim().Split('.');
        if (parts.Length != 2 || parts.Any(p => !Regex.IsMatch(p, "^[A-Za-z_][A-Za-z0-9_$]{0,62}$")))
        {
            throw new ConfigurationException($"Configuration key 'signal.data.collection' must name the signal table as schema.table (unquoted identifiers), found '{value}'.");
        }

        return $"{parts[0]}.{parts[1]}";
    }

    /// <summary>The configuration as printable <c>key=value</c> lines, secrets masked.</summary>
    public static IEnumerable<string> Describe(IReadOnlyDictionary<string, string> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        foreach (var (key, value) in values.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            yield return $"{key}={(IsSecretKey(key) ? "********" : value)}";
        }
    }

    /// <summary>
    /// The Npgsql read buffer (bytes) of the connections snapshot chunks are read on (initial snapshot sessions, the
    /// incremental snapshot's windows). Npgsql's raw copy stream hands out at most one
    /// CopyData message (one row) per read, served from this buffer: a larger one than Npgsql's 8 KiB means fewer socket
    /// reads per row. The W6 benchmark's binary COPY baseline reads with the same buffer.
    /// </summary>
    public const int SnapshotReadBufferSize = 256 * 1024;

    /// <summary>An Npgsql connection string for this source; <paramref name="replication"/> adds the replication settings.</summary>
    /// <param name="replication">Whether the connection is a replication connection.</param>
    /// <param name="readBufferSize">Npgsql's read buffer in bytes (its default, 8 KiB, when null): larger for bulk reads, fewer socket reads.</param>
    public string ConnectionString(bool replication, int? readBufferSize = null)
    {
        var builder = new Npgsql.NpgsqlConnectionStringBuilder
        {
            Host = DatabaseHost,
            Port = DatabasePort,
            Username = DatabaseUser,
            Password = DatabasePassword,
            Database = DatabaseName,
            SslMode = DatabaseSslMode switch
            {
                "disable" => Npgsql.SslMode.Disable,
                "allow" => Npgsql.SslMode.Allow,
                "require" => Npgsql.SslMode.Require,
                "verify-ca" => Npgsql.SslMode.VerifyCA,
                "verify-full" => Npgsql.SslMode.VerifyFull,
                _ => Npgsql.SslMode.Prefer,
            },
            ApplicationName = $"walbridge:{Name}",
            RootCertificate = DatabaseSslRootCertificate,
            // The text forms we parse (replication) and compare with (queries) assume these session
            // settings; see docs/format.md. Floats: 3 makes the walsender print every digit; 1 is
            // PostgreSQL's default shortest exact form, which is what `SELECT col::text` shows users.
            Options = $"-c DateStyle=ISO -c TimeZone=UTC -c IntervalStyle=postgres -c bytea_output=hex -c extra_float_digits={(replication ? 3 : 1)}",
            Pooling = false,
            Timeout = 15,
            CommandTimeout = 60,
        };
        if (readBufferSize is { } size)
        {
            builder.ReadBufferSize = size;
        }

        if (replication)
        {
            builder.KeepAlive = 10;
        }

        return builder.ConnectionString;
    }
}
