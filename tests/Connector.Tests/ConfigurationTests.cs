using WalBridge.Connector.Configuration;
using WalBridge.Serialization.Payload;

namespace WalBridge.Connector.Tests;

public class ConfigurationTests
{
    private static Dictionary<string, string> Minimal() => new()
    {
        ["name"] = "orders-cdc",
        ["database.user"] = "cdc",
        ["database.dbname"] = "shop",
        ["topic.prefix"] = "shop",
        ["kafka.bootstrap.servers"] = "k1:9092",
    };

    [Fact]
    public void Minimal_configuration_gets_documented_defaults()
    {
        var config = ConnectorConfig.FromDictionary(Minimal());
        Assert.Equal("localhost", config.DatabaseHost);
        Assert.Equal(5432, config.DatabasePort);
        Assert.Equal(DecodingPlugin.PgOutput, config.Plugin);
        Assert.Equal("walbridge_orders_cdc", config.SlotName);
        Assert.Equal("walbridge_orders_cdc", config.PublicationName);
        Assert.Equal("shop.walbridge.offsets", config.OffsetsTopic);
        Assert.Equal("shop.public.orders", config.TopicFor("public", "orders"));
        Assert.Equal(1_000_000, config.MessageMaxBytes);
        Assert.Equal("k1:9092", config.Kafka["bootstrap.servers"]);
    }

    [Theory]
    [InlineData("name")]
    [InlineData("database.user")]
    [InlineData("database.dbname")]
    [InlineData("topic.prefix")]
    [InlineData("kafka.bootstrap.servers")]
    public void Missing_required_key_is_named(string key)
    {
        var values = Minimal();
        values.Remove(key);
        var e = Assert.Throws<ConfigurationException>(() => ConnectorConfig.FromDictionary(values));
        Assert.Contains($"'{key}'", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Unknown_key_is_named()
    {
        var values = Minimal();
        values["databse.hostname"] = "x";
        var e = Assert.Throws<ConfigurationException>(() => ConnectorConfig.FromDictionary(values));
        Assert.Contains("'databse.hostname'", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("database.port", "70000")]
    [InlineData("database.sslmode", "sometimes")]
    [InlineData("plugin", "wal2json")]
    [InlineData("slot.name", "Bad-Slot")]
    [InlineData("table.include.list", "public.(orders")]
    [InlineData("kafka.transactional.id", "mine")]
    public void Invalid_value_names_the_key(string key, string value)
    {
        var values = Minimal();
        values[key] = value;
        var e = Assert.Throws<ConfigurationException>(() => ConnectorConfig.FromDictionary(values));
        Assert.Contains(key, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Include_list_matches_whole_qualified_names()
    {
        var values = Minimal();
        values["table.include.list"] = "public\\.orders, inventory\\..*";
        var config = ConnectorConfig.FromDictionary(values);
        Assert.True(config.Includes("public", "orders"));
        Assert.False(config.Includes("public", "orders_archive"));
        Assert.True(config.Includes("inventory", "items"));
        Assert.False(config.Includes("public", "customers"));
    }

    [Fact]
    public void Properties_file_parses_comments_and_both_separators()
    {
        var parsed = ConfigSource.ParseProperties("# comment\n! also\nname = a\ndatabase.port: 6543\n\n kafka.linger.ms=5 \n", "test");
        Assert.Equal("a", parsed["name"]);
        Assert.Equal("6543", parsed["database.port"]);
        Assert.Equal("5", parsed["kafka.linger.ms"]);
        Assert.Equal(3, parsed.Count);
    }

    [Fact]
    public void Properties_line_without_separator_is_an_error_with_line_number()
    {
        var e = Assert.Throws<ConfigurationException>(() => ConfigSource.ParseProperties("name=a\njunk\n", "c.properties"));
        Assert.Contains("c.properties:2", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Kafka_connect_json_shape_is_flattened()
    {
        var parsed = ConfigSource.ParseJson("""{"name": "inv", "config": {"database.port": 5433, "snapshot": true, "topic.prefix": "p"}}""", "c.json");
        Assert.Equal("inv", parsed["name"]);
        Assert.Equal("5433", parsed["database.port"]);
        Assert.Equal("true", parsed["snapshot"]);
        Assert.Equal("p", parsed["topic.prefix"]);
    }

    [Fact]
    public void Nested_json_values_are_rejected_with_the_key()
    {
        var e = Assert.Throws<ConfigurationException>(() => ConfigSource.ParseJson("""{"kafka": {"bootstrap.servers": "x"}}""", "c.json"));
        Assert.Contains("'kafka'", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Environment_variables_map_to_known_keys_only()
    {
        var env = new System.Collections.Hashtable
        {
            ["WALBRIDGE_DATABASE_PASSWORD"] = "s3cret",
            ["WALBRIDGE_KAFKA_BOOTSTRAP_SERVERS"] = "b:1",
            ["WALBRIDGE_LIBRDKAFKA"] = "/x/librdkafka.so.1",
            ["PATH"] = "/bin",
        };
        var parsed = ConfigSource.FromEnvironment(env);
        Assert.Equal("s3cret", parsed["database.password"]);
        Assert.Equal("b:1", parsed["kafka.bootstrap.servers"]);
        Assert.Equal(2, parsed.Count);
    }

    [Fact]
    public void Set_override_needs_key_and_value()
    {
        Assert.Equal(new KeyValuePair<string, string>("a.b", "c=d"), ConfigSource.ParseOverride("a.b=c=d"));
        Assert.Throws<ConfigurationException>(() => ConfigSource.ParseOverride("novalue"));
    }

    [Fact]
    public void Describe_masks_secrets()
    {
        var values = Minimal();
        values["database.password"] = "hunter2";
        values["kafka.sasl.password"] = "p4ss";
        var text = string.Join("\n", ConnectorConfig.Describe(values));
        Assert.DoesNotContain("hunter2", text, StringComparison.Ordinal);
        Assert.DoesNotContain("p4ss", text, StringComparison.Ordinal);
        Assert.Contains("database.password=********", text, StringComparison.Ordinal);
    }

    [Fact]
    public void Arrow_compression_is_off_by_default()
    {
        Assert.Equal(ArrowCompression.None, ConnectorConfig.FromDictionary(Minimal()).ArrowCompression);
    }

    [Theory]
    [InlineData("none", ArrowCompression.None)]
    [InlineData("lz4_frame", ArrowCompression.Lz4Frame)]
    [InlineData("zstd", ArrowCompression.Zstd)]
    public void Arrow_compression_takes_the_arrow_codec_names(string value, ArrowCompression expected)
    {
        var values = Minimal();
        values["arrow.compression"] = value;
        Assert.Equal(expected, ConnectorConfig.FromDictionary(values).ArrowCompression);
    }

    [Theory]
    [InlineData("lz4")]
    [InlineData("gzip")]
    [InlineData("ZSTD")]
    public void Other_arrow_compressions_are_rejected_with_the_choices(string value)
    {
        var values = Minimal();
        values["arrow.compression"] = value;
        var e = Assert.Throws<ConfigurationException>(() => ConnectorConfig.FromDictionary(values));
        Assert.Contains("'arrow.compression'", e.Message, StringComparison.Ordinal);
        Assert.Contains("none, lz4_frame, zstd", e.Message, StringComparison.Ordinal);
    }

    /// <summary>The plugin's batches are passed through as PostgreSQL encoded them: the setting cannot apply, so it is refused.</summary>
    [Theory]
    [InlineData("lz4_frame")]
    [InlineData("zstd")]
    public void Arrow_compression_is_refused_with_the_wal2arrow_plugin(string value)
    {
        var values = Minimal();
        values["plugin"] = "wal2arrow";
        values["arrow.compression"] = value;
        var e = Assert.Throws<ConfigurationException>(() => ConnectorConfig.FromDictionary(values));
        Assert.Contains("'arrow.compression'", e.Message, StringComparison.Ordinal);
        Assert.Contains("wal2arrow", e.Message, StringComparison.Ordinal);
        Assert.Contains("kafka.compression.type", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Wal2arrow_takes_no_arrow_compression_and_kafka_compression_passes_through()
    {
        var values = Minimal();
        values["plugin"] = "wal2arrow";
        values["arrow.compression"] = "none";
        values["kafka.compression.type"] = "zstd";
        var config = ConnectorConfig.FromDictionary(values);
        Assert.Equal(ArrowCompression.None, config.ArrowCompression);
        Assert.Equal("zstd", config.Kafka["compression.type"]);
    }
}
