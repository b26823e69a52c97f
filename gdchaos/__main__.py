from gdchaos.cli import console

console()
