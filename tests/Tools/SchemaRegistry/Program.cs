using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Avro;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace WalBridge.SchemaRegistry;

/// <summary>
/// <c>WalBridge.SchemaRegistry [--port N] [--state FILE] [--basic-auth user:password] [--exit-on-stdin-eof]</c>: the
/// documented Schema Registry REST subset Confluent's clients use (register, lookup, schemas by id, subjects and
/// versions, compatibility checks, config), Avro only, with real compatibility checking. Prints
/// <c>listening=http://127.0.0.1:PORT</c> once it accepts requests.
/// </summary>
internal static class Program
{
    private const string ContentType = "application/vnd.schemaregistry.v1+json";

    private static async Task<int> Main(string[] args)
    {
        var port = 0;
        string? state = null;
        string? basicAuth = null;
        var exitOnStdinEof = false;
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--port":
                    port = int.Parse(args[++i], CultureInfo.InvariantCulture);
                    break;
                case "--state":
                    state = args[++i];
                    break;
                case "--basic-auth":
                    basicAuth = args[++i];
                    break;
                case "--exit-on-stdin-eof":
                    exitOnStdinEof = true;
                    break;
                default:
                    await Console.Error.WriteLineAsync($"unknown argument {args[i]}");
                    return 2;
            }
        }

        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(System.Net.IPAddress.Loopback, port, o => o.Protocols = HttpProtocols.Http1));
        var app = builder.Build();
        var store = new RegistryStore(state);
        var expectedAuth = basicAuth is null ? null : "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes(basicAuth));
        app.Use(async (context, next) =>
        {
            if (expectedAuth is not null && context.Request.Headers.Authorization.ToString() != expectedAuth)
            {
                await Error(context.Response, 401, 401, "Unauthorized");
                return;
            }
            await next(context);
        });
        Map(app, store);
        await app.StartAsync();
        var address = app.Urls.First();
        Console.WriteLine($"listening={address.Replace("[::]", "127.0.0.1", StringComparison.Ordinal)}");
        if (exitOnStdinEof)
        {
            _ = Task.Run(async () =>
            {
                while (await Console.In.ReadLineAsync() is not null)
                {
                }
                await app.StopAsync();
            });
        }
        await app.WaitForShutdownAsync();
        return 0;
    }

    private static void Map(WebApplication app, RegistryStore store)
    {
        app.MapPost("/subjects/{subject}/versions", async (HttpContext context, string subject) =>
        {
            var schema = await SchemaOf(context);
            if (schema is null)
            {
                await Error(context.Response, 422, 42201, "Invalid schema: the body has no 'schema'");
                return;
            }
            var outcome = store.Register(subject, schema);
            if (outcome.Status != 200)
            {
                await Error(context.Response, outcome.Status, outcome.ErrorCode, outcome.Message);
                return;
            }
            await Json(context.Response, new JsonObject { ["id"] = outcome.Id });
        });
        app.MapPost("/subjects/{subject}", async (HttpContext context, string subject) =>
        {
            var schema = await SchemaOf(context);
            if (store.Versions(subject) is null)
            {
                await Error(context.Response, 404, 40401, $"Subject '{subject}' not found.");
                return;
            }
            var found = schema is null ? null : store.Lookup(subject, schema);
            if (found is null)
            {
                await Error(context.Response, 404, 40403, "Schema not found");
                return;
            }
            await Json(context.Response, Describe(found));
        });
        app.MapGet("/schemas/ids/{id:int}", async (HttpContext context, int id) =>
        {
            if (store.SchemaById(id) is not { } schema)
            {
                await Error(context.Response, 404, 40403, $"Schema {id} not found");
                return;
            }
            await Json(context.Response, new JsonObject { ["schema"] = schema });
        });
        app.MapGet("/subjects", async (HttpContext context) =>
            await Json(context.Response, new JsonArray([.. store.SubjectNames().Select(s => (JsonNode)s)])));
        app.MapGet("/subjects/{subject}/versions", async (HttpContext context, string subject) =>
        {
            if (store.Versions(subject) is not { } versions)
            {
                await Error(context.Response, 404, 40401, $"Subject '{subject}' not found.");
                return;
            }
            await Json(context.Response, new JsonArray([.. versions.Select(v => (JsonNode)v.Version)]));
        });
        app.MapGet("/subjects/{subject}/versions/{version}", async (HttpContext context, string subject, string version) =>
        {
            if (store.Versions(subject) is not { } versions)
            {
                await Error(context.Response, 404, 40401, $"Subject '{subject}' not found.");
                return;
            }
            var found = version == "latest" ? versions[^1] : versions.FirstOrDefault(v => v.Version.ToString(CultureInfo.InvariantCulture) == version);
            if (found is null)
            {
                await Error(context.Response, 404, 40402, $"Version {version} not found.");
                return;
            }
            await Json(context.Response, Describe(found));
        });
        app.MapDelete("/subjects/{subject}", async (HttpContext context, string subject) =>
        {
            if (store.Delete(subject) is not { } versions)
            {
                await Error(context.Response, 404, 40401, $"Subject '{subject}' not found.");
                return;
            }
            await Json(context.Response, new JsonArray([.. versions.Select(v => (JsonNode)v)]));
        });
        app.MapPost("/compatibility/subjects/{subject}/versions/{version}", async (HttpContext context, string subject, string version) =>
        {
            var text = await SchemaOf(context);
            Schema parsed;
            try
            {
                parsed = Schema.Parse(text ?? "");
            }
            catch (Exception e) when (e is SchemaParseException or AvroException or Newtonsoft.Json.JsonException)
            {
                await Error(context.Response, 422, 42201, $"Invalid schema: {e.Message}");
                return;
            }
            var versions = store.Versions(subject);
            var number = version == "latest" ? (versions is { Count: > 0 } ? versions[^1].Version : (int?)null) : int.Parse(version, CultureInfo.InvariantCulture);
            var problems = versions is null ? [] : store.CompatibilityProblems(subject, parsed, versions, number);
            var result = new JsonObject { ["is_compatible"] = problems.Count == 0 };
            if (context.Request.Query["verbose"] == "true")
            {
                result["messages"] = new JsonArray([.. problems.Select(p => (JsonNode)p)]);
            }
            await Json(context.Response, result);
        });
        app.MapGet("/config", async (HttpContext context) => await Json(context.Response, new JsonObject { ["compatibilityLevel"] = store.Level(null) }));
        app.MapGet("/config/{subject}", async (HttpContext context, string subject) =>
        {
            var level = store.SubjectLevel(subject) ?? (context.Request.Query["defaultToGlobal"] == "true" ? store.Level(null) : null);
            if (level is null)
            {
                await Error(context.Response, 404, 40408, $"Subject '{subject}' does not have subject-level compatibility configured");
                return;
            }
            await Json(context.Response, new JsonObject { ["compatibilityLevel"] = level });
        });
        app.MapPut("/config", async (HttpContext context) => await SetLevel(context, store, null));
        app.MapPut("/config/{subject}", async (HttpContext context, string subject) => await SetLevel(context, store, subject));
    }

    private static async Task SetLevel(HttpContext context, RegistryStore store, string? subject)
    {
        var body = await Body(context);
        var level = body?["compatibility"]?.GetValue<string>();
        if (level is null || !RegistryStore.Levels.Contains(level))
        {
            await Error(context.Response, 422, 42203, $"Invalid compatibility level '{level}'. Valid values are {string.Join(", ", RegistryStore.Levels)}");
            return;
        }
        store.SetLevel(subject, level);
        await Json(context.Response, new JsonObject { ["compatibility"] = level });
    }

    private static JsonObject Describe(SubjectVersion v) => new() { ["subject"] = v.Subject, ["version"] = v.Version, ["id"] = v.Id, ["schema"] = v.Schema };

    private static async Task<JsonNode?> Body(HttpContext context)
    {
        using var reader = new StreamReader(context.Request.Body, Encoding.UTF8);
        var text = await reader.ReadToEndAsync();
        try
        {
            return text.Length == 0 ? null : JsonNode.Parse(text);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static async Task<string?> SchemaOf(HttpContext context)
    {
        var body = await Body(context);
        var type = body?["schemaType"]?.GetValue<string>();
        return type is null or "AVRO" ? body?["schema"]?.GetValue<string>() : null;
    }

    private static Task Json(HttpResponse response, JsonNode node)
    {
        response.ContentType = ContentType;
        return response.WriteAsync(node.ToJsonString());
    }

    private static Task Error(HttpResponse response, int status, int errorCode, string message)
    {
        response.StatusCode = status;
        return Json(response, new JsonObject { ["error_code"] = errorCode, ["message"] = message });
    }
}
