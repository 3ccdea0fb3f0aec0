using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using WalBridge.Connector.Configuration;
using WalBridge.Connector.Hosting;

namespace WalBridge.Connector.Cli;

/// <summary><c>connector run</c>: the service, against any PostgreSQL and Kafka.</summary>
internal static class RunCommand
{
    /// <summary>Builds the configuration from <c>--config</c>, <c>WALBRIDGE_*</c> variables and <c>--set</c>, in that order.</summary>
    public static ConnectorConfig LoadConfig(string[] args, out CliArguments options)
    {
        options = new CliArguments(args, ["--config", "--set"], ["--print-config"]);
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        var file = options.Value("--config");
        if (file is not null)
        {
            Merge(values, ConfigSource.LoadFile(file));
        }

        Merge(values, ConfigSource.FromEnvironment(Environment.GetEnvironmentVariables()));
        foreach (var assignment in options.Values("--set"))
        {
            var (key, value) = ConfigSource.ParseOverride(assignment);
            values[key] = value;
        }
        if (file is null && values.Count == 0)
        {
            throw new UsageException("a configuration is needed: --config <file> (or --set key=value / WALBRIDGE_* variables).");
        }

        var config = ConnectorConfig.FromDictionary(values);
        if (options.Flag("--print-config"))
        {
            foreach (var line in ConnectorConfig.Describe(values))
            {
                Console.WriteLine(line);
            }
        }
        return config;
    }

    public static async Task<int> RunAsync(string[] args)
    {
        var config = LoadConfig(args, out var options);
        if (options.Flag("--print-config"))
        {
            return 0;
        }

        var builder = Host.CreateApplicationBuilder([]);
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.TimestampFormat = "yyyy-MM-dd'T'HH:mm:ss.fff ";
            o.UseUtcTimestamp = true;
        });
        builder.Logging.SetMinimumLevel(LogLevel.Information);
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = Pipeline.GracefulStop.HostShutdown);
        builder.Services.AddSingleton(config);
        builder.Services.AddHostedService<ConnectorService>();
        using var host = builder.Build();
        await host.RunAsync();
        return Environment.ExitCode;
    }

    private static void Merge(Dictionary<string, string> into, Dictionary<string, string> from)
    {
        foreach (var (key, value) in from)
        {
            into[key] = value;
        }
    }
}
