using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using WalBridge.Connector.Configuration;
using WalBridge.Connector.Errors;
using WalBridge.Connector.Operations;
using WalBridge.Connector.Pipeline;

namespace WalBridge.Connector.Hosting;

/// <summary>
/// The HTTP endpoints of <c>operations.listen</c>: <c>/metrics</c> (Prometheus text format), <c>/health/live</c>,
/// <c>/health/ready</c>, and the admin API in Kafka Connect's shape under <c>/connectors/&lt;name&gt;</c>
/// (<c>status</c>, <c>config</c>, <c>pause</c>, <c>resume</c>, <c>restart</c>, <c>snapshot</c>).
/// </summary>
/// <remarks>
/// Authentication: with <c>operations.token</c> set, <c>/metrics</c> and <c>/connectors/…</c> need
/// <c>Authorization: Bearer &lt;token&gt;</c> (401 otherwise); the health checks stay open for probes. Off loopback a
/// token is mandatory (the configuration refuses to start without one). Secrets are never returned: the config view
/// masks them like <c>--print-config</c>. Every admin request that changes something is logged with its caller's address.
/// Threading: requests run on Kestrel's threads and only read the runner's thread-safe state or send it requests.
/// </remarks>
internal static partial class OperationsEndpoints
{
    public static void Map(WebApplication app, ConnectorConfig config, ConnectorRunner runner, ILogger logger)
    {
        app.Use(async (context, next) =>
        {
            var path = context.Request.Path;
            var guarded = path.StartsWithSegments("/connectors", StringComparison.Ordinal) || path.StartsWithSegments("/metrics", StringComparison.Ordinal);
            if (guarded && config.OperationsToken is { } token && !Authorized(context.Request, token))
            {
                var remote = Remote(context);
                LogUnauthorized(logger, context.Request.Method, path.Value ?? "", remote);
                context.Response.StatusCode = StatusCodes.Status401Unauthorized;
                context.Response.Headers.WWWAuthenticate = "Bearer";
                await context.Response.WriteAsJsonAsync(Error(401, "A bearer token is required: send 'Authorization: Bearer <operations.token>'."));
                return;
            }
            await next(context);
        });

        app.MapGet("/metrics", async context =>
        {
            context.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
            await runner.Metrics.WriteAsync(context.Response.Body, context.RequestAborted);
        });
        app.MapGet("/health/live", () => runner.Status.State == ConnectorState.Failed
            ? Results.Json(new Dictionary<string, object?> { ["status"] = "failed", ["error"] = runner.Status.LastError?.Message }, statusCode: 503)
            : Results.Json(new Dictionary<string, object?> { ["status"] = "live", ["state"] = ConnectorMetrics.StateName(runner.Status.State) }));
        app.MapGet("/health/ready", () =>
        {
            var (ready, reason) = Readiness(config, runner);
            return Results.Json(new Dictionary<string, object?> { ["status"] = ready ? "ready" : "not ready", ["reason"] = reason }, statusCode: ready ? 200 : 503);
        });

        app.MapGet("/connectors", () => Results.Json(new[] { config.Name }));
        app.MapGet("/connectors/{name}", (string name) => Known(config, name) ?? Results.Json(new Dictionary<string, object?>
        {
            ["name"] = config.Name,
            ["config"] = MaskedConfig(config),
            ["tasks"] = new[] { new Dictionary<string, object?> { ["connector"] = config.Name, ["task"] = 0 } },
            ["type"] = "source",
        }));
        app.MapGet("/connectors/{name}/status", (string name) => Known(config, name) ?? Results.Json(StatusDocument(config, runner)));
        app.MapGet("/connectors/{name}/config", (string name) => Known(config, name) ?? Results.Json(MaskedConfig(config)));
        app.MapPost("/connectors/{name}/pause", (string name, HttpContext context) => Known(config, name) ?? Control(context, logger, "pause", runner.Status.RequestPause));
        app.MapPut("/connectors/{name}/pause", (string name, HttpContext context) => Known(config, name) ?? Control(context, logger, "pause", runner.Status.RequestPause));
        app.MapPost("/connectors/{name}/resume", (string name, HttpContext context) => Known(config, name) ?? Control(context, logger, "resume", runner.Status.Resume));
        app.MapPut("/connectors/{name}/resume", (string name, HttpContext context) => Known(config, name) ?? Control(context, logger, "resume", runner.Status.Resume));
        app.MapPost("/connectors/{name}/restart", (string name, HttpContext context) => Known(config, name) ?? Control(context, logger, "restart", runner.Status.RequestRestart));
        app.MapPost("/connectors/{name}/snapshot", async (string name, HttpContext context) =>
        {
            if (Known(config, name) is { } unknown)
            {
                return unknown;
            }

            var remote = Remote(context);
            LogAdminRequest(logger, "snapshot", remote);
            // {"tables": ["schema.table", ...]}, or Debezium's signal data {"data-collections": [...]}.
            List<string> tables;
            try
            {
                using var body = await System.Text.Json.JsonDocument.ParseAsync(context.Request.Body, cancellationToken: context.RequestAborted);
                var list = body.RootElement.ValueKind == System.Text.Json.JsonValueKind.Object
                    && (body.RootElement.TryGetProperty("tables", out var t) || body.RootElement.TryGetProperty("data-collections", out t))
                    && t.ValueKind == System.Text.Json.JsonValueKind.Array ? t : default;
                if (list.ValueKind != System.Text.Json.JsonValueKind.Array || list.EnumerateArray().Any(e => e.ValueKind != System.Text.Json.JsonValueKind.String))
                {
                    return Results.Json(Error(400, "The body must be a JSON object like {\"tables\": [\"public.orders\"]}."), statusCode: 400);
                }

                tables = list.EnumerateArray().Select(e => e.GetString()!).ToList();
            }
            catch (System.Text.Json.JsonException e)
            {
                return Results.Json(Error(400, $"The body is not JSON ({e.Message}); send {{\"tables\": [\"schema.table\"]}}."), statusCode: 400);
            }

            try
            {
                var id = await Snapshot.SignalTable.WriteAsync(config, tables, logger, context.RequestAborted);
                return Results.Json(new Dictionary<string, object?> { ["signal"] = id, ["tables"] = tables, ["signal.data.collection"] = config.SignalDataCollection }, statusCode: 202);
            }
            catch (ConfigurationException e)
            {
                return Results.Json(Error(400, e.Message), statusCode: 400);
            }
            catch (Npgsql.NpgsqlException e)
            {
                return Results.Json(Error(503, $"The signal could not be written to the source: {e.Message}"), statusCode: 503);
            }
        });
        app.MapFallback((HttpContext context) => Results.Json(Error(404, $"No endpoint {context.Request.Method} {context.Request.Path}."), statusCode: 404));
    }

    /// <summary>Ready: streaming and at most <c>health.ready.max.lag.ms</c> behind the source.</summary>
    public static (bool Ready, string Reason) Readiness(ConnectorConfig config, ConnectorRunner runner)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(runner);
        var state = runner.Status.State;
        if (state != ConnectorState.Streaming)
        {
            return (false, $"state is {ConnectorMetrics.StateName(state)}{(runner.Status.Detail is { } detail ? $" ({detail})" : "")}");
        }

        var lag = runner.Metrics.LagMilliseconds;
        if (lag is { } ms && ms > config.ReadyMaxLag.TotalMilliseconds)
        {
            return (false, string.Create(CultureInfo.InvariantCulture, $"lag {ms:F0} ms is above health.ready.max.lag.ms = {config.ReadyMaxLag.TotalMilliseconds:F0}"));
        }

        return (true, lag is { } value ? string.Create(CultureInfo.InvariantCulture, $"streaming, lag {value:F0} ms") : "streaming");
    }

    /// <summary>The status in Kafka Connect's shape, with WalBridge's own figures under <c>walbridge</c>.</summary>
    public static Dictionary<string, object?> StatusDocument(ConnectorConfig config, ConnectorRunner runner)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(runner);
        var status = runner.Status;
        var state = status.State;
        var connectState = state switch
        {
            ConnectorState.Streaming => "RUNNING",
            ConnectorState.Paused => "PAUSED",
            ConnectorState.Failed => "FAILED",
            ConnectorState.Standby => "UNASSIGNED",
            ConnectorState.Stopped => "STOPPED",
            _ => "RESTARTING",
        };
        var source = runner.Source.Last;
        var error = status.LastError;
        var task = new Dictionary<string, object?> { ["id"] = 0, ["state"] = connectState, ["worker_id"] = status.WorkerId };
        if (state == ConnectorState.Failed && error is not null)
        {
            task["trace"] = error.Message;
        }

        return new Dictionary<string, object?>
        {
            ["name"] = config.Name,
            ["connector"] = new Dictionary<string, object?> { ["state"] = connectState, ["worker_id"] = status.WorkerId },
            ["tasks"] = new[] { task },
            ["type"] = "source",
            ["walbridge"] = new Dictionary<string, object?>
            {
                ["state"] = ConnectorMetrics.StateName(state),
                ["since"] = status.Since,
                ["detail"] = status.Detail,
                ["leader"] = status.IsLeader,
                ["slot"] = config.SlotName,
                ["publication"] = config.PublicationName,
                ["plugin"] = config.Plugin.Name(),
                ["committed_lsn"] = runner.Progress.Committed.ToString(),
                ["received_lsn"] = runner.Progress.Received.ToString(),
                ["source_wal_lsn"] = source?.CurrentWal.ToString(),
                ["lag_bytes"] = source is null ? null : ConnectorMetrics.LagBytes(source, runner.Progress.Committed),
                ["lag_ms"] = runner.Metrics.LagMilliseconds is { } lag ? Math.Round(lag) : null,
                ["source_reachable"] = runner.Source.SourceReachable,
                ["slot_wal_status"] = source?.WalStatus,
                ["slot_retained_wal_bytes"] = source?.RetainedWalBytes,
                ["committed_source_transactions"] = runner.Progress.CommittedTransactions,
                ["committed_rows"] = runner.Progress.CommittedRows,
                ["queued_transactions"] = runner.Progress.Queued,
                ["last_error"] = error is null ? null : new Dictionary<string, object?>
                {
                    ["class"] = ConnectorMetrics.ClassName(error.Kind),
                    ["message"] = error.Message,
                    ["at"] = error.At,
                },
            },
        };
    }

    /// <summary>The configuration with every secret masked (<see cref="ConnectorConfig.Describe"/>'s rule).</summary>
    public static SortedDictionary<string, string> MaskedConfig(ConnectorConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var masked = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in ConnectorConfig.Describe(config.SourceValues))
        {
            var eq = line.IndexOf('=', StringComparison.Ordinal);
            masked[line[..eq]] = line[(eq + 1)..];
        }
        return masked;
    }

    private static IResult? Known(ConnectorConfig config, string name) =>
        name == config.Name ? null : Results.Json(Error(404, $"Connector {name} not found (this instance runs {config.Name})."), statusCode: 404);

    private static IResult Control(HttpContext context, ILogger logger, string action, Action request)
    {
        var remote = Remote(context);
        LogAdminRequest(logger, action, remote);
        request();
        return Results.StatusCode(StatusCodes.Status202Accepted);
    }

    private static string Remote(HttpContext context) => context.Connection.RemoteIpAddress?.ToString() ?? "?";

    private static Dictionary<string, object?> Error(int code, string message) => new() { ["error_code"] = code, ["message"] = message };

    private static bool Authorized(HttpRequest request, string token)
    {
        var header = request.Headers.Authorization.ToString();
        const string scheme = "Bearer ";
        if (!header.StartsWith(scheme, StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        var given = Encoding.UTF8.GetBytes(header[scheme.Length..].Trim());
        var expected = Encoding.UTF8.GetBytes(token);
        return CryptographicOperations.FixedTimeEquals(given, expected);
    }

    [LoggerMessage(EventId = 4201, Level = LogLevel.Information, Message = "Admin API: {Action} requested by {Remote}")]
    private static partial void LogAdminRequest(ILogger logger, string action, string remote);

    [LoggerMessage(EventId = 4202, Level = LogLevel.Warning, Message = "Admin API: {Method} {Path} from {Remote} refused without a valid bearer token")]
    private static partial void LogUnauthorized(ILogger logger, string method, string path, string remote);
}
