SR = 16000
FFT_SIZE = 512
FFT_HOP = 256
N_MELS = 96
MTT_LABELS = [f"tag{i}" for i in range(50)]
MSD_LABELS = [f"tag{i}" for i in range(50)]
