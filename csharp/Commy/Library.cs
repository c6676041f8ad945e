using System;
using Commy.Interop;

[module: System.Runtime.CompilerServices.SkipLocalsInit]

namespace Commy;

/// <summary>Facts about the native library and the check that it is the
/// one this binding was generated against.</summary>
public static class Library
{
    /// <summary>COMMY_VERSION_NUMBER of the headers SWIG generated this binding from.</summary>
    public const int BindingVersion = commy.COMMY_VERSION_NUMBER;

    private static readonly object Gate = new();
    private static volatile bool _checked;

    /// <summary>commy_version_number() of the loaded native library.</summary>
    public static int NativeVersion
    {
        get
        {
            EnsureLoaded();
            return commy.commy_version_number();
        }
    }

    /// <summary>The loaded native library's version string, e.g. "1.0.0".</summary>
    public static string NativeVersionString
    {
        get
        {
            EnsureLoaded();
            return commy.commy_version_string();
        }
    }

    /// <summary>Loads the native library once and checks its version; every
    /// Segment.Open calls it. Throws <see cref="VersionMismatchException"/>
    /// (or a <see cref="CommyException"/> if the library cannot be loaded).</summary>
    public static void EnsureLoaded()
    {
        if (_checked) return;
        lock (Gate)
        {
            if (_checked) return;
            int native;
            try
            {
                native = commy.commy_version_number();
            }
            catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or TypeInitializationException)
            {
                throw new CommyException(0,
                    "the native part of Commy (libcommy_csharp.so with libcommy.so.1) could not be loaded: " +
                    e.Message + ". Install the Commy package for linux-x64, or build csharp/Commy from the commy tree.", e);
            }
            CheckVersion(native, BindingVersion);
            _checked = true;
        }
    }

    /// <summary>The load-time rule: the native version must equal the binding's.</summary>
    internal static void CheckVersion(int native, int binding)
    {
        if (native != binding)
            throw new VersionMismatchException(native, binding,
                $"the native commy library is version {Format(native)} but this Commy binding was generated against " +
                $"{Format(binding)}; use the libcommy that ships in the same Commy package");
    }

    private static string Format(int v) => $"{v / 1000000}.{v / 1000 % 1000}.{v % 1000}";
}
