using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using WalBridge.Connector.Configuration;
using WalBridge.Connector.Errors;
using WalBridge.Connector.Pipeline;
using WalBridge.DevTools.Embedded;
using Xunit.Abstractions;

namespace WalBridge.Integration.Tests;

/// <summary>
/// Issue 14, security: a PostgreSQL that requires TLS and SCRAM-SHA-256 for the connector's user, with a CA and a
/// server certificate made here with openssl. <c>verify-full</c> and <c>verify-ca</c> connect; a wrong host name and an
/// unknown CA fail at once with a fatal error that names the certificate settings; passwords come from a file and from
/// the environment; no secret (the database password, the admin token, a Kafka SASL password) appears in any log line
/// (debug level included), in /metrics, or in the status and config output.
/// </summary>
[Collection(InfrastructureCollection.Name)]
public sealed class SecurityTests(Infrastructure infrastructure, ITestOutputHelper output) : IAsyncLifetime
{
    private const string Password = "CANARY-PG-7d1f0e6a2b";
    private const string Token = "CANARY-TOKEN-5c9e3b1d7a40";
    private const string KafkaPassword = "CANARY-KAFKA-2f8a6c4e";
    private readonly string _directory = Path.Combine(Path.GetTempPath(), $"walbridge-tls-{Guid.NewGuid():N}");
    private TemporaryPostgres _postgres = null!;

    private string Ca => Path.Combine(_directory, "ca.crt");
    private string OtherCa => Path.Combine(_directory, "other-ca.crt");

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_directory);
        // A CA, a server certificate for "localhost" signed by it, and an unrelated CA.
        await OpenSslAsync("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=WalBridge test CA", "-keyout", "ca.key", "-out", "ca.crt");
        await OpenSslAsync("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=Unknown CA", "-keyout", "other-ca.key", "-out", "other-ca.crt");
        await OpenSslAsync("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", "server.key", "-out", "server.csr");
        await File.WriteAllTextAsync(Path.Combine(_directory, "san.ext"), "subjectAltName = DNS:localhost\n");
        await OpenSslAsync("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "server.crt");
        if (Environment.UserName == "root")
        {
            await RunAsync("chown", "-R", "postgres:postgres", _directory);
        }

        // PostgreSQL wants its key readable by its own user only; the folder must let it in.
        await RunAsync("chmod", "0600", Path.Combine(_directory, "server.key"));
        await RunAsync("chmod", "0755", _directory);
        _postgres = await TemporaryPostgres.StartAsync(new Dictionary<string, string>
        {
            ["ssl"] = "on",
            ["ssl_cert_file"] = $"'{Path.Combine(_directory, "server.crt")}'",
            ["ssl_key_file"] = $"'{Path.Combine(_directory, "server.key")}'",
            ["password_encryption"] = "'scram-sha-256'",
        }, hbaFirst:
        [
            "hostssl all cdc 127.0.0.1/32 scram-sha-256",
            "hostssl replication cdc 127.0.0.1/32 scram-sha-256",
            "host all cdc 0.0.0.0/0 reject",
            "host replication cdc 0.0.0.0/0 reject",
        ]);
        await _postgres.ExecuteAsync($"CREATE ROLE cdc LOGIN REPLICATION PASSWORD '{Password}'");
        await _postgres.ExecuteAsync("CREATE DATABASE shop OWNER cdc");
        await _postgres.ExecuteAsync("CREATE TABLE items (id bigserial PRIMARY KEY, v text); ALTER TABLE items OWNER TO cdc", "shop");
    }

    public async Task DisposeAsync()
    {
        await _postgres.DisposeAsync();
        Directory.Delete(_directory, recursive: true);
    }

    private Dictionary<string, string> Values(string host, string sslMode, string rootCert, IDictionary<string, string>? extra = null)
    {
        var values = new Dictionary<string, string>
        {
            ["name"] = $"tls{Guid.NewGuid():N}"[..12],
            ["database.hostname"] = host,
            ["database.port"] = _postgres.Port.ToString(CultureInfo.InvariantCulture),
            ["database.user"] = "cdc",
            ["database.dbname"] = "shop",
            ["database.sslmode"] = sslMode,
            ["database.sslrootcert"] = rootCert,
            ["topic.prefix"] = $"tls{Guid.NewGuid():N}"[..16],
            ["state.dir"] = Path.Combine(Path.GetTempPath(), $"walbridge-test-state-{Guid.NewGuid():N}"),
            ["kafka.bootstrap.servers"] = infrastructure.Broker.BootstrapServers,
            ["heartbeat.interval.ms"] = "1000",
            // cdc owns the table but is no superuser: a publication FOR TABLE, not FOR ALL TABLES.
            ["table.include.list"] = "public\\.items",
        };
        foreach (var (key, value) in extra ?? new Dictionary<string, string>())
        {
            values[key] = value;
        }

        return values;
    }

    [Fact]
    public async Task Verify_full_with_scram_and_a_password_file_streams_and_no_secret_is_ever_printed()
    {
        var passwordFile = Path.Combine(_directory, "pg-password");
        await File.WriteAllTextAsync(passwordFile, Password + "\n");
        var tokenFile = Path.Combine(_directory, "token");
        await File.WriteAllTextAsync(tokenFile, Token + "\n");
        var values = Values("localhost", "verify-full", Ca, new Dictionary<string, string>
        {
            ["database.password.file"] = passwordFile,
            ["operations.token.file"] = tokenFile,
            // Passed through to librdkafka unchanged (the local broker takes plaintext, so SASL stays unused): it must never be printed.
            ["kafka.sasl.username"] = "cdc",
            ["kafka.sasl.password"] = KafkaPassword,
        });
        var environment = new Dictionary<string, string> { ["Logging__LogLevel__Default"] = "Debug" };
        await using var connector = ConnectorProcess.Start(values, environment, Token);
        await connector.WaitForStateAsync(values["name"], "RUNNING", TimeSpan.FromSeconds(90));
        await _postgres.ExecuteAsync("INSERT INTO items (v) SELECT 'row ' || g FROM generate_series(1, 100) g", "shop");
        await OperationsTests.WaitForMetricAsync(connector, "walbridge_committed_rows_total", "table=\"public.items\"", v => v >= 100);

        // Every session of the connector is TLS and authenticated with SCRAM.
        var plain = await _postgres.ScalarAsync<long>("SELECT count(*) FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) WHERE a.usename = 'cdc' AND NOT s.ssl");
        var tls = await _postgres.ScalarAsync<long>("SELECT count(*) FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) WHERE a.usename = 'cdc' AND s.ssl");
        Assert.Equal(0, plain);
        Assert.True(tls >= 2, $"{tls} TLS sessions of the connector");
        Assert.StartsWith("SCRAM-SHA-256$", await _postgres.ScalarAsync<string>("SELECT rolpassword FROM pg_authid WHERE rolname = 'cdc'"), StringComparison.Ordinal);

        var metrics = await connector.MetricsAsync();
        var status = await connector.Http.GetStringAsync($"connectors/{values["name"]}/status");
        var config = await connector.Http.GetStringAsync($"connectors/{values["name"]}/config");
        var (code, printed) = await OperationsTests.CliAsync("status", "--config", connector.ConfigFile);
        var (_, printedConfig) = await OperationsTests.CliAsync("run", "--config", connector.ConfigFile, "--print-config");
        Assert.Equal(0, code);
        Assert.Equal(0, await connector.TerminateAsync(TimeSpan.FromSeconds(60)));
        Assert.Contains("librdkafka", connector.Output, StringComparison.Ordinal); // debug level really was on
        foreach (var (what, text) in new[] { ("log", connector.Output), ("metrics", metrics), ("status", status), ("config", config), ("status command", printed), ("--print-config", printedConfig) })
        {
            foreach (var secret in new[] { Password, Token, KafkaPassword })
            {
                Assert.False(text.Contains(secret, StringComparison.Ordinal), $"the {what} output holds the secret {secret}");
            }
        }
        output.WriteLine($"{connector.Output.Split('\n').Length} log lines, metrics, status and config checked for 3 secrets");
    }

    [Fact]
    public async Task Verify_ca_accepts_an_address_the_certificate_does_not_name_and_the_password_may_come_from_the_environment()
    {
        var environment = new Dictionary<string, string> { ["WALBRIDGE_DATABASE_PASSWORD"] = Password };
        var values = Values("127.0.0.1", "verify-ca", Ca);
        foreach (var (key, value) in ConfigSource.FromEnvironment(environment))
        {
            values[key] = value;
        }

        var config = ConnectorConfig.FromDictionary(values);
        await using var connection = new NpgsqlConnection(config.ConnectionString(replication: false));
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", connection);
        Assert.True((bool)(await command.ExecuteScalarAsync())!);
    }

    [Theory]
    [InlineData("127.0.0.1", "verify-full", false)] // the certificate names localhost, not the address
    [InlineData("localhost", "verify-full", true)]  // signed by a CA the connector does not trust
    [InlineData("127.0.0.1", "verify-ca", true)]
    public async Task A_wrong_host_name_or_an_unknown_ca_is_a_fatal_error_that_names_the_certificate(string host, string sslMode, bool unknownCa)
    {
        var values = Values(host, sslMode, unknownCa ? OtherCa : Ca, new Dictionary<string, string> { ["database.password"] = Password });
        var config = ConnectorConfig.FromDictionary(values);
        var runner = new ConnectorRunner(config, NullLogger.Instance);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var error = await Assert.ThrowsAnyAsync<Exception>(() => runner.RunAsync(timeout.Token));
        Assert.False(timeout.IsCancellationRequested, "the connector retried instead of stopping");
        Assert.Equal(FailureKind.Fatal, FailureClassification.Classify(error));
        var advice = FailureClassification.Advice(error, config);
        var line = $"{FailureClassification.Describe(error)}; check {advice}";
        output.WriteLine(line);
        Assert.NotNull(advice);
        Assert.Contains("database.sslrootcert", advice, StringComparison.Ordinal);
        Assert.Contains("certificate", line, StringComparison.OrdinalIgnoreCase);
        Assert.Equal("FAILED", OperationsStateOf(runner));
        Assert.DoesNotContain(Password, line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_wrong_password_is_fatal_and_names_the_password_settings()
    {
        var values = Values("localhost", "verify-full", Ca, new Dictionary<string, string> { ["database.password"] = "CANARY-PG-wrong" });
        var config = ConnectorConfig.FromDictionary(values);
        var runner = new ConnectorRunner(config, NullLogger.Instance);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var error = await Assert.ThrowsAnyAsync<Exception>(() => runner.RunAsync(timeout.Token));
        Assert.Equal(FailureKind.Fatal, FailureClassification.Classify(error));
        var advice = FailureClassification.Advice(error, config) ?? "";
        Assert.Contains("database.password.file", advice, StringComparison.Ordinal);
        Assert.DoesNotContain("CANARY-PG-wrong", FailureClassification.Describe(error), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Kafka_SASL_settings_pass_through_and_fail_closed_against_a_broker_without_SASL_without_printing_the_password()
    {
        // The local broker (librdkafka's mock cluster) speaks plaintext only: SASL_PLAINTEXT reaches librdkafka unchanged
        // and the handshake fails, so nothing may be committed or acknowledged and the password may appear nowhere.
        var values = Values("localhost", "verify-full", Ca, new Dictionary<string, string>
        {
            ["database.password"] = Password,
            ["kafka.security.protocol"] = "SASL_PLAINTEXT",
            ["kafka.sasl.mechanisms"] = "SCRAM-SHA-512",
            ["kafka.sasl.username"] = "cdc",
            ["kafka.sasl.password"] = KafkaPassword,
        });
        var config = ConnectorConfig.FromDictionary(values);
        Assert.Equal("SASL_PLAINTEXT", config.Kafka["security.protocol"]);
        var logger = new CapturingLogger();
        var runner = new ConnectorRunner(config, logger);
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        var run = runner.RunAsync(stop.Token);
        while (runner.Status.LastError is null && !run.IsCompleted && !stop.IsCancellationRequested)
        {
            await Task.Delay(200);
        }

        await stop.CancelAsync();
        await run;
        var error = runner.Status.LastError;
        Assert.NotNull(error);
        output.WriteLine(error.Message);
        Assert.Equal(FailureKind.Transient, error.Kind);
        Assert.Equal(0, runner.Progress.CommittedTransactions);
        Assert.True(runner.Progress.Committed.IsZero);
        Assert.DoesNotContain(KafkaPassword, error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(logger.Lines, l => l.Contains(KafkaPassword, StringComparison.Ordinal) || l.Contains(Password, StringComparison.Ordinal));
    }

    private static string OperationsStateOf(ConnectorRunner runner) =>
        runner.Status.State == WalBridge.Connector.Operations.ConnectorState.Failed ? "FAILED" : runner.Status.State.ToString();

    private Task OpenSslAsync(params string[] args) => RunAsync("openssl", args);

    private async Task RunAsync(string file, params string[] args)
    {
        var start = new ProcessStartInfo(file) { WorkingDirectory = _directory, RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        _ = process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();
        Assert.True(process.ExitCode == 0, $"{file} {string.Join(' ', args)}: {await stderr}");
    }
}
