using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using WalBridge.Connector.Configuration;

namespace WalBridge.Connector.Cli;

/// <summary>
/// <c>connector status --config F</c>: asks a running connector (its admin API at <c>operations.listen</c>, with
/// <c>operations.token</c> when set) for its status and prints it as a table, then the configuration it runs with
/// (secrets masked by the connector). Exit code 0 when it answered, 1 when it could not be reached or answered an error.
/// </summary>
internal static class StatusCommand
{
    public static async Task<int> RunAsync(string[] args)
    {
        var config = RunCommand.LoadConfig(args, out _);
        if (config.OperationsListen is not { } listen)
        {
            throw new UsageException("operations.listen is off in this configuration: the connector has no admin API to ask.");
        }

        if (listen.Port == 0)
        {
            throw new UsageException("operations.listen has port 0 (any free port): give the connector a fixed port to reach it.");
        }

        var address = listen.Address.Equals(IPAddress.Any) ? IPAddress.Loopback : listen.Address.Equals(IPAddress.IPv6Any) ? IPAddress.IPv6Loopback : listen.Address;
        var baseUri = new Uri($"http://{new IPEndPoint(address, listen.Port)}/connectors/{Uri.EscapeDataString(config.Name)}/");
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        if (config.OperationsToken is { } token)
        {
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }

        JsonElement status;
        JsonElement settings;
        try
        {
            status = await GetAsync(http, new Uri(baseUri, "status"));
            settings = await GetAsync(http, new Uri(baseUri, "config"));
        }
        catch (HttpRequestException e)
        {
            await Console.Error.WriteLineAsync($"connector: cannot reach connector {config.Name} at {baseUri}: {e.Message}");
            return 1;
        }
        catch (TaskCanceledException)
        {
            await Console.Error.WriteLineAsync($"connector: connector {config.Name} at {baseUri} did not answer within 10 s");
            return 1;
        }

        var rows = new List<(string, string)>
        {
            ("connector", config.Name),
            ("state", $"{status.GetProperty("connector").GetProperty("state").GetString()} ({Text(status.GetProperty("walbridge"), "state")})"),
        };
        foreach (var property in status.GetProperty("walbridge").EnumerateObject())
        {
            if (property.Name is "state")
            {
                continue;
            }

            if (property.Name == "last_error" && property.Value.ValueKind == JsonValueKind.Object)
            {
                rows.Add(("last_error", $"{Text(property.Value, "class")} at {Text(property.Value, "at")}: {Text(property.Value, "message")}"));
                continue;
            }
            rows.Add((property.Name, Render(property.Value)));
        }
        Print("status", rows);
        Console.WriteLine();
        Print("config", settings.EnumerateObject().Select(p => (p.Name, Render(p.Value))).ToList());
        return 0;
    }

    private static async Task<JsonElement> GetAsync(HttpClient http, Uri uri)
    {
        using var response = await http.GetAsync(uri);
        var body = await response.Content.ReadAsStringAsync();
        if (!response.IsSuccessStatusCode)
        {
            string message;
            try
            {
                message = JsonDocument.Parse(body).RootElement.GetProperty("message").GetString() ?? body;
            }
            catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
            {
                message = body;
            }
            throw new HttpRequestException($"{(int)response.StatusCode} {response.ReasonPhrase}: {message}");
        }
        return JsonDocument.Parse(body).RootElement.Clone();
    }

    private static string Text(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) ? Render(value) : "-";

    private static string Render(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.Null or JsonValueKind.Undefined => "-",
        JsonValueKind.String => value.GetString() ?? "-",
        JsonValueKind.Number => value.GetRawText(),
        JsonValueKind.True => "true",
        JsonValueKind.False => "false",
        _ => value.GetRawText(),
    };

    private static void Print(string title, IReadOnlyList<(string Key, string Value)> rows)
    {
        var width = Math.Max(title.Length, rows.Max(r => r.Key.Length));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{title.PadRight(width)} │ value"));
        Console.WriteLine($"{new string('─', width)}─┼─{new string('─', 40)}");
        foreach (var (key, value) in rows)
        {
            Console.WriteLine($"{key.PadRight(width)} │ {value}");
        }
    }
}
