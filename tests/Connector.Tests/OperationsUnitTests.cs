using System.Net;
using System.Net.Sockets;
using System.Security.Authentication;
using Confluent.Kafka;
using Npgsql;
using WalBridge.Connector.Configuration;
using WalBridge.Connector.Errors;
using WalBridge.Connector.Operations;
using WalBridge.Connector.Source;
using WalBridge.Offsets;

namespace WalBridge.Connector.Tests;

/// <summary>Issue 14 without servers: the new configuration keys, the failure rules, the leadership key, the operator controls and the failover rules.</summary>
public class OperationsUnitTests
{
    private static Dictionary<string, string> Minimal(params (string Key, string Value)[] extra)
    {
        var values = new Dictionary<string, string>
        {
            ["name"] = "orders-cdc",
            ["database.user"] = "cdc",
            ["database.dbname"] = "shop",
            ["topic.prefix"] = "shop",
            ["kafka.bootstrap.servers"] = "k1:9092",
        };
        foreach (var (key, value) in extra)
        {
            values[key] = value;
        }

        return values;
    }

    [Fact]
    public void Operations_defaults_listen_on_loopback_with_high_availability_on()
    {
        var config = ConnectorConfig.FromDictionary(Minimal());
        Assert.Equal(new IPEndPoint(IPAddress.Loopback, 8083), config.OperationsListen);
        Assert.Null(config.OperationsToken);
        Assert.True(config.HighAvailability);
        Assert.False(config.SlotFailover);
        Assert.Equal(TimeSpan.FromMinutes(1), config.ReadyMaxLag);
        Assert.Null(ConnectorConfig.FromDictionary(Minimal(("operations.listen", "off"))).OperationsListen);
    }

    [Theory]
    [InlineData("operations.listen", "8083")]
    [InlineData("operations.listen", "localhost:8083")]
    [InlineData("ha.enabled", "yes")]
    [InlineData("slot.failover", "1")]
    [InlineData("ha.poll.interval.ms", "5")]
    [InlineData("health.ready.max.lag.ms", "0")]
    public void Invalid_operations_values_are_errors_that_name_the_key(string key, string value)
    {
        var error = Assert.Throws<ConfigurationException>(() => ConnectorConfig.FromDictionary(Minimal((key, value))));
        Assert.Contains(key, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Listening_beyond_loopback_needs_a_token_of_at_least_16_characters()
    {
        var error = Assert.Throws<ConfigurationException>(() => ConnectorConfig.FromDictionary(Minimal(("operations.listen", "0.0.0.0:8083"))));
        Assert.Contains("operations.token", error.Message, StringComparison.Ordinal);
        Assert.Throws<ConfigurationException>(() => ConnectorConfig.FromDictionary(Minimal(("operations.listen", "0.0.0.0:8083"), ("operations.token", "short"))));
        var config = ConnectorConfig.FromDictionary(Minimal(("operations.listen", "0.0.0.0:8083"), ("operations.token", "0123456789abcdef")));
        Assert.Equal("0123456789abcdef", config.OperationsToken);
    }

    [Fact]
    public void Passwords_and_tokens_come_from_files_without_their_line_end_and_are_masked()
    {
        var password = Path.GetTempFileName();
        var token = Path.GetTempFileName();
        try
        {
            File.WriteAllText(password, "pa55-from-file\n");
            File.WriteAllText(token, "token-from-a-file-0123\r\n");
            var values = Minimal(("database.password.file", password), ("operations.token.file", token));
            var config = ConnectorConfig.FromDictionary(values);
            Assert.Equal("pa55-from-file", config.DatabasePassword);
            Assert.Equal("token-from-a-file-0123", config.OperationsToken);
            values["operations.token"] = "direct-token-0123456789";
            values.Remove("operations.token.file");
            var described = string.Join('\n', ConnectorConfig.Describe(values));
            Assert.DoesNotContain("direct-token", described, StringComparison.Ordinal);
            Assert.Contains("operations.token=********", described, StringComparison.Ordinal);

            var both = Minimal(("database.password.file", password), ("database.password", "x"));
            Assert.Contains("both set", Assert.Throws<ConfigurationException>(() => ConnectorConfig.FromDictionary(both)).Message, StringComparison.Ordinal);
            var missing = Minimal(("database.password.file", password + ".missing"));
            Assert.Contains("database.password.file", Assert.Throws<ConfigurationException>(() => ConnectorConfig.FromDictionary(missing)).Message, StringComparison.Ordinal);
            var noCa = Minimal(("database.sslrootcert", "/nonexistent/ca.crt"));
            Assert.Contains("database.sslrootcert", Assert.Throws<ConfigurationException>(() => ConnectorConfig.FromDictionary(noCa)).Message, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(password);
            File.Delete(token);
        }
    }

    [Fact]
    public void A_fenced_producer_is_fatal_unless_the_leadership_was_lost_first()
    {
        var fenced = new KafkaException(new Error(ErrorCode.Local_Fenced, "fenced", isFatal: true));
        Assert.True(FailureClassification.IsFenced(fenced));
        Assert.True(FailureClassification.IsFenced(new AggregateException(new InvalidOperationException("x", fenced))));
        Assert.Equal(FailureKind.Fatal, FailureClassification.Classify(fenced, leadershipLost: false));
        Assert.Equal(FailureKind.Transient, FailureClassification.Classify(fenced, leadershipLost: true));
        Assert.False(FailureClassification.IsFenced(new KafkaException(ErrorCode.Local_Transport)));
    }

    [Fact]
    public void Advice_names_what_to_check()
    {
        var config = ConnectorConfig.FromDictionary(Minimal(("database.hostname", "db.internal"), ("database.sslmode", "verify-full")));
        var unreachable = new NpgsqlException("Failed to connect to db.internal:5432", new SocketException((int)SocketError.ConnectionRefused));
        Assert.Equal(FailureKind.Transient, FailureClassification.Classify(unreachable));
        Assert.Contains("PostgreSQL at db.internal:5432", FailureClassification.Advice(unreachable, config), StringComparison.Ordinal);
        var tls = new NpgsqlException("Exception while performing SSL handshake", new AuthenticationException("The remote certificate was rejected"));
        Assert.Equal(FailureKind.Fatal, FailureClassification.Classify(tls));
        Assert.Contains("database.sslrootcert", FailureClassification.Advice(tls, config), StringComparison.Ordinal);
        Assert.Contains("kafka.bootstrap.servers (k1:9092)", FailureClassification.Advice(new KafkaException(ErrorCode.Local_Transport), config), StringComparison.Ordinal);
        Assert.Null(FailureClassification.Advice(new SourceNotReadyException("says it itself"), config));
    }

    [Fact]
    public void The_leadership_key_is_stable_positive_and_differs_by_name()
    {
        Assert.Equal(LeaderLock.LockKey("shop"), LeaderLock.LockKey("shop"));
        Assert.NotEqual(LeaderLock.LockKey("shop"), LeaderLock.LockKey("shop2"));
        Assert.True(LeaderLock.LockKey("shop") >= 0);
    }

    [Fact]
    public async Task Pause_and_restart_cancel_the_attempt_and_resume_ends_the_pause()
    {
        using var status = new ConnectorStatus();
        var attempt = status.BeginAttempt();
        status.RequestRestart();
        Assert.True(attempt.IsCancellationRequested);
        Assert.False(status.PauseRequested);
        await status.WaitWhilePausedAsync(CancellationToken.None);

        attempt = status.BeginAttempt();
        Assert.False(attempt.IsCancellationRequested);
        status.RequestPause();
        Assert.True(attempt.IsCancellationRequested);
        var waiting = status.WaitWhilePausedAsync(CancellationToken.None);
        Assert.False(waiting.IsCompleted);
        status.Resume();
        await waiting.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.False(status.BeginAttempt().IsCancellationRequested);
    }

    [Fact]
    public void Lag_in_bytes_counts_from_the_committed_position_or_the_slot_before_any_commit()
    {
        var source = new SourceSnapshot(DateTimeOffset.UtcNow, new Lsn(10_000), true, "reserved", new Lsn(1_000), new Lsn(4_000), true, null);
        Assert.Equal(3_000, ConnectorMetricsLag(source, new Lsn(7_000)));
        Assert.Equal(6_000, ConnectorMetricsLag(source, Lsn.Zero));
        Assert.Equal(0, ConnectorMetricsLag(source, new Lsn(12_000)));
        Assert.Equal(9_000, source.RetainedWalBytes);
    }

    private static long ConnectorMetricsLag(SourceSnapshot source, Lsn committed) => ConnectorMetrics.LagBytes(source, committed);

    [Fact]
    public void Failover_slots_need_PostgreSQL_17_and_a_standby_is_refused_where_it_cannot_be_streamed()
    {
        var failover = ConnectorConfig.FromDictionary(Minimal(("slot.failover", "true")));
        var plain = ConnectorConfig.FromDictionary(Minimal());
        var error = Assert.Throws<SourceNotReadyException>(() => Failover.CheckServer(failover, 150010, inRecovery: false));
        Assert.Contains("PostgreSQL 17", error.Message, StringComparison.Ordinal);
        Assert.Contains("15.10", error.Message, StringComparison.Ordinal);
        Failover.CheckServer(failover, 170002, inRecovery: false);
        Failover.CheckServer(plain, 150010, inRecovery: false);
        Assert.Throws<SourceNotReadyException>(() => Failover.CheckServer(plain, 150010, inRecovery: true));
        Assert.Throws<SourceNotReadyException>(() => Failover.CheckServer(failover, 170002, inRecovery: true));
        Failover.CheckServer(plain, 160001, inRecovery: true);
    }

    [Fact]
    public void After_a_promotion_only_a_position_before_the_timeline_switch_is_safe()
    {
        var config = ConnectorConfig.FromDictionary(Minimal());
        var history = Failover.ParseHistory("1\t0/3000158\tno recovery target specified\n\n2\t0/5000000\tbefore 2026-12-01\n");
        Assert.Equal([new TimelineSwitch(1, Lsn.Parse("0/3000158")), new TimelineSwitch(2, Lsn.Parse("0/5000000"))], history);
        Assert.Null(Failover.CheckTimeline(config, 3, Lsn.Parse("0/9000000"), 3, history));
        Assert.Equal(Lsn.Parse("0/3000158"), Failover.CheckTimeline(config, 1, Lsn.Parse("0/3000100"), 3, history));
        var phantom = Assert.Throws<UnsafeStartException>(() => Failover.CheckTimeline(config, 1, Lsn.Parse("0/3000200"), 3, history));
        Assert.Contains("phantom", phantom.Message, StringComparison.Ordinal);
        Assert.Throws<UnsafeStartException>(() => Failover.CheckTimeline(config, 4, Lsn.Parse("0/1"), 3, history));
        Assert.Throws<UnsafeStartException>(() => Failover.CheckTimeline(config, 7, Lsn.Parse("0/1"), 9, history));
        Assert.Throws<FormatException>(() => Failover.ParseHistory("x\t0/1\tbad"));
    }
}
