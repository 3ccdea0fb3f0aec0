using Confluent.Kafka;

namespace WalBridge.Connector.Tests;

/// <summary>
/// Issue 10: the connector uses Confluent.Kafka with the librdkafka.redist package as shipped (on Debian 12 the
/// library picks its centos8 build). These check that the variant that loads here is the pinned one and that it was
/// built with the security features users configure through <c>kafka.*</c>: TLS and SASL PLAIN / SCRAM. A library
/// built without them rejects the settings when the client is built ("… not available at build time").
/// </summary>
public class KafkaLibraryTests
{
    [Fact]
    public void The_shipped_librdkafka_is_the_pinned_version()
    {
        // Library.Version is librdkafka's hex version, e.g. 0x020a00ff for 2.10.0.
        var version = Library.Version;
        Assert.Equal(2, version >> 24);
        Assert.Equal(16, (version >> 16) & 0xFF);
        Assert.StartsWith("2.16.", Library.VersionString, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("SASL_SSL", "PLAIN")]
    [InlineData("SASL_SSL", "SCRAM-SHA-256")]
    [InlineData("SASL_SSL", "SCRAM-SHA-512")]
    [InlineData("SASL_PLAINTEXT", "SCRAM-SHA-512")]
    public void Sasl_and_tls_settings_configure_a_transactional_producer(string protocol, string mechanism)
    {
        var config = new ProducerConfig
        {
            BootstrapServers = "127.0.0.1:1",
            TransactionalId = $"walbridge-test-{Guid.NewGuid():N}",
            EnableIdempotence = true,
            SecurityProtocol = Enum.Parse<SecurityProtocol>(protocol.Replace("_", "", StringComparison.Ordinal), ignoreCase: true),
            SaslMechanism = mechanism switch
            {
                "PLAIN" => SaslMechanism.Plain,
                "SCRAM-SHA-256" => SaslMechanism.ScramSha256,
                _ => SaslMechanism.ScramSha512,
            },
            SaslUsername = "user",
            SaslPassword = "secret",
            SslEndpointIdentificationAlgorithm = SslEndpointIdentificationAlgorithm.Https,
        };
        using var producer = new ProducerBuilder<byte[]?, byte[]>(config).Build();
        Assert.False(string.IsNullOrEmpty(producer.Name));
    }

    [Fact]
    public void A_missing_tls_file_is_a_configuration_error_naming_the_key_and_the_file()
    {
        var error = Assert.Throws<Configuration.ConfigurationException>(() => Configuration.ConnectorConfig.FromDictionary(new Dictionary<string, string>
        {
            ["name"] = "tls",
            ["database.user"] = "cdc",
            ["database.dbname"] = "shop",
            ["topic.prefix"] = "shop",
            ["kafka.bootstrap.servers"] = "127.0.0.1:1",
            ["kafka.security.protocol"] = "SSL",
            ["kafka.ssl.ca.location"] = "/nonexistent/walbridge-ca.pem",
        }));
        Assert.Contains("kafka.ssl.ca.location", error.Message, StringComparison.Ordinal);
        Assert.Contains("/nonexistent/walbridge-ca.pem", error.Message, StringComparison.Ordinal);
    }
}
