using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using WalBridge.Connector.Configuration;
using WalBridge.Connector.Hosting;

namespace WalBridge.Connector.Cli;

/// <summary><c>connector run</c>: the service, against any PostgreSQL and Kafka.</summary>
internal static partial class RunCommand
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

        if (config.OperationsListen is null)
        {
            var builder = Host.CreateApplicationBuilder([]);
            Configure(builder.Logging, builder.Services, config);
            using var host = builder.Build();
            await host.RunAsync();
            return Environment.ExitCode;
        }

        var web = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [], ContentRootPath = AppContext.BaseDirectory });
        Configure(web.Logging, web.Services, config);
        web.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(config.OperationsListen));
        using var app = web.Build();
        var runner = app.Services.GetRequiredService<Pipeline.ConnectorRunner>();
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("WalBridge.Operations");
        OperationsEndpoints.Map(app, config, runner, logger);
        try
        {
            await app.StartAsync();
        }
        catch (IOException e)
        {
            // Kestrel reports an address in use (or not available) as an IOException.
            throw new ConfigurationException($"operations.listen = {config.OperationsListen} cannot be used: {e.Message}. Choose another address or port (or 'off').", e);
        }
        foreach (var address in app.Urls)
        {
            LogListening(logger, address, config.OperationsToken is not null);
        }

        await app.WaitForShutdownAsync();
        return Environment.ExitCode;
    }

    private static void Configure(ILoggingBuilder logging, IServiceCollection services, ConnectorConfig config)
    {
        logging.ClearProviders();
        logging.AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.TimestampFormat = "yyyy-MM-dd'T'HH:mm:ss.fff ";
            o.UseUtcTimestamp = true;
        });
        logging.SetMinimumLevel(LogLevel.Information);
        // The host's and Kestrel's own start-up lines (content root, environment, "press Ctrl+C") say nothing an
        // operator needs; the connector logs where it listens itself. Their warnings and errors still show.
        logging.AddFilter("Microsoft.Hosting.Lifetime", LogLevel.Warning);
        logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        services.Configure<HostOptions>(o => o.ShutdownTimeout = Pipeline.GracefulStop.HostShutdown);
        services.AddSingleton(config);
        services.AddSingleton(provider => new Pipeline.ConnectorRunner(config, provider.GetRequiredService<ILoggerFactory>().CreateLogger<ConnectorService>()));
        services.AddHostedService<ConnectorService>();
    }

    private static void Merge(Dictionary<string, string> into, Dictionary<string, string> from)
    {
        foreach (var (key, value) in from)
        {
            into[key] = value;
        }
    }

    [LoggerMessage(EventId = 4200, Level = LogLevel.Information, Message = "Operations endpoints on {Address}: /metrics, /health/live, /health/ready, /connectors/<name>/… (bearer token {TokenRequired})")]
    private static partial void LogListening(ILogger logger, string address, bool tokenRequired);
}
