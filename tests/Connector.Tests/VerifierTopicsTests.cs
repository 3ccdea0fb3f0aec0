using WalBridge.Connector.Configuration;
using WalBridge.Connector.Verification;

namespace WalBridge.Connector.Tests;

/// <summary>Which topics <c>verify</c> replays as Arrow table topics when Debezium formats write beside them (issue 13).</summary>
public class VerifierTopicsTests
{
    private static readonly string[] s_topics =
    [
        "shop.public.items", "shop.public.items.json", "shop.public.items.avro", "shop.public.odd.name",
        "shop.transaction.json", "shop.message.json", "shop.transaction.avro", "shop.walbridge.offsets", "shop.messages",
        "other.public.items",
    ];

    private static ConnectorConfig Config(params (string Key, string Value)[] settings)
    {
        var values = new Dictionary<string, string>
        {
            ["name"] = "v",
            ["database.user"] = "cdc",
            ["database.dbname"] = "postgres",
            ["topic.prefix"] = "shop",
            ["kafka.bootstrap.servers"] = "127.0.0.1:9",
        };
        foreach (var (key, value) in settings)
        {
            values[key] = value;
        }

        return ConnectorConfig.FromDictionary(values);
    }

    [Fact]
    public void Debezium_topics_beside_Arrow_ones_are_not_replayed_as_Arrow()
    {
        var config = Config(("output.formats", "arrow,debezium-json,debezium-avro"), ("schema.registry.url", "http://127.0.0.1:9"));
        Assert.Equal(["shop.public.items", "shop.public.odd.name"], PipelineVerifier.ArrowTableTopics(s_topics, config));
    }

    [Fact]
    public void An_Arrow_suffix_selects_only_the_topics_that_carry_it()
    {
        var config = Config(("output.formats", "arrow,debezium-json"), ("output.arrow.topic.suffix", ".arrow"), ("output.debezium-json.topic.suffix", ""));
        Assert.Equal(["shop.public.items.arrow"], PipelineVerifier.ArrowTableTopics([.. s_topics, "shop.public.items.arrow", "shop.x.arrow"], config));
    }

    [Fact]
    public void Each_Debezium_format_replays_its_own_table_topics_only()
    {
        var config = Config(("output.formats", "arrow,debezium-json,debezium-avro"), ("schema.registry.url", "http://127.0.0.1:9"));
        Assert.Equal(["shop.public.items.json"], DebeziumReplay.TableTopics(s_topics, config, OutputFormat.DebeziumJson));
        Assert.Equal(["shop.public.items.avro"], DebeziumReplay.TableTopics(s_topics, config, OutputFormat.DebeziumAvro));

        // A Debezium format alone keeps Debezium's names: every table topic, not its message and transaction topics.
        var alone = Config(("output.formats", "debezium-json"));
        Assert.Equal(["shop.public.items", "shop.public.odd.name"],
            DebeziumReplay.TableTopics(["shop.public.items", "shop.public.odd.name", "shop.transaction", "shop.message", "shop.walbridge.offsets", "other.public.items"], alone, OutputFormat.DebeziumJson));
    }

    [Fact]
    public void Without_Arrow_there_are_no_Arrow_table_topics()
    {
        Assert.Empty(PipelineVerifier.TableTopics([], Config(("output.formats", "debezium-json"))));
    }
}
