"""Ways audio gets in and out: WAV files (real-time paced), the local audio device."""
