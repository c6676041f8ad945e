using System;
using System.IO;

namespace Commy.Tests;

/// <summary>A fresh segment path per test, under one temporary folder that
/// the test run removes when it ends.</summary>
internal static class TestPaths
{
    private static readonly string Root = CreateRoot();

    private static string CreateRoot()
    {
        string root = Path.Combine(Path.GetTempPath(), $"commy-cs-tests-{Environment.ProcessId}");
        Directory.CreateDirectory(root);
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try { Directory.Delete(root, true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        };
        return root;
    }

    public static string New(string tag) => Path.Combine(Root, $"{tag}-{Guid.NewGuid():N}.mem");

    /// <summary>Options small enough to keep many test segments cheap.</summary>
    public static SegmentOptions Small => new() { InitialSize = 1 << 20, MaxSize = 64ul << 20 };

    public static Segment Open(string tag) => Segment.Open(New(tag), Small);
}
